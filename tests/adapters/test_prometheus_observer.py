"""Prometheus metrics of a run, read back by the real tools: promtool, node_exporter's
textfile collector and a Pushgateway."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import HttpServer
from prometheus_servers import Server, http_get, promtool_check_metrics

from opsctl.adapters.observers.prometheus import PrometheusObserver, textfile_name
from opsctl.ports import RunEnd

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def run_of(job: str, exit_code: int = 0, details: dict[str, Any] | None = None,
           database_down: bool = False, **fields: Any) -> RunEnd:
    event = {"type": "summary", "state": "ok", "exit_code": exit_code, **fields}
    return RunEnd(job, "r-1", "cron-1", T0, T0 + timedelta(seconds=2.5),
                  "ok" if exit_code < 3 else "error", exit_code, event, details or {},
                  database_down)


class Events(list[dict[str, Any]]):
    def __call__(self, type_: str, message: str, *, level: str = "info", **fields: Any) -> None:
        self.append({"type": type_, "message": message, "level": level, **fields})


def observer(textfile_dir: Path | None = None, pushgateway_url: str | None = None,
             last_success: datetime | None = EARLIER) -> tuple[PrometheusObserver, Events,
                                                              list[str]]:
    events, asked = Events(), []

    def lookup(job: str) -> datetime | None:
        asked.append(job)
        return last_success

    return (PrometheusObserver(textfile_dir=textfile_dir, pushgateway_url=pushgateway_url,
                               timeout_s=5, host="cron-1", last_success=lookup,
                               emit=events), events, asked)


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


FILES_RUN = {"deleted_count": 40, "missing_count": 2, "failed_count": 1,
             "bytes_freed": 123456789}


def test_files_cleanup_textfile_has_every_metric_with_its_value(tmp_path: Path) -> None:
    obs, events, asked = observer(tmp_path)

    obs.run_ended(run_of("files.cleanup", 1, **FILES_RUN))

    path = tmp_path / "opsctl_files_cleanup.prom"
    text = path.read_text()
    job = '{opsctl_job="files.cleanup"}'
    assert samples(text) == {
        f"opsctl_job_last_run_timestamp_seconds{job}": (T0 + timedelta(seconds=2.5)).timestamp(),
        f"opsctl_job_last_success_timestamp_seconds{job}": (
            T0 + timedelta(seconds=2.5)).timestamp(),
        f"opsctl_job_duration_seconds{job}": 2.5,
        f"opsctl_job_exit_code{job}": 1.0,
        f"opsctl_files_deleted{job}": 40.0,
        f"opsctl_files_missing{job}": 2.0,
        f"opsctl_files_failed{job}": 1.0,
        f"opsctl_files_bytes_freed{job}": 123456789.0,
    }
    assert "# TYPE opsctl_job_exit_code gauge" in text
    assert asked == []  # this run succeeded: it is the last success
    assert events == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opsctl_files_cleanup.prom"]
    assert not re.search(r"\} \S+ \d+$", text, re.MULTILINE)  # no sample timestamps
    checked = promtool_check_metrics(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_failed_run_keeps_the_last_success_from_history(tmp_path: Path) -> None:
    obs, events, asked = observer(tmp_path)

    obs.run_ended(run_of("logs.cleanup", 3))

    got = samples((tmp_path / "opsctl_logs_cleanup.prom").read_text())
    job = '{opsctl_job="logs.cleanup"}'
    assert got[f"opsctl_job_last_success_timestamp_seconds{job}"] == EARLIER.timestamp()
    assert got[f"opsctl_job_exit_code{job}"] == 3.0
    assert f"opsctl_log_rows_deleted{job}" not in got  # nothing measured, no made-up zero
    assert asked == ["logs.cleanup"]


def test_a_run_that_found_the_database_down_does_not_ask_it_again(tmp_path: Path) -> None:
    obs, events, asked = observer(tmp_path)

    obs.run_ended(run_of("logs.cleanup", 3, database_down=True))

    got = samples((tmp_path / "opsctl_logs_cleanup.prom").read_text())
    assert asked == []
    assert not any(name.startswith("opsctl_job_last_success") for name in got)


def test_never_succeeded_has_no_last_success(tmp_path: Path) -> None:
    obs, _, _ = observer(tmp_path, last_success=None)

    obs.run_ended(run_of("metrics.aggregate", 78))

    text = (tmp_path / "opsctl_metrics_aggregate.prom").read_text()
    assert "opsctl_job_last_success_timestamp_seconds{" not in text


AGGREGATE = {"total_exports": 200, "completed": 180, "failed": 12, "failure_rate": 0.0625,
             "p50_duration_ms": 1500.0, "p95_duration_ms": 8000.0, "p99_duration_ms": 12500.0}


def test_export_metrics_of_metrics_aggregate_and_failure_rate_check(tmp_path: Path) -> None:
    obs, _, _ = observer(tmp_path)

    obs.run_ended(run_of("metrics.aggregate", 0, **AGGREGATE))
    obs.run_ended(run_of("failure-rate.check", 2, total=50, completed=40, failed=10,
                         failure_rate=0.2, alert_open=True))

    agg = samples((tmp_path / "opsctl_metrics_aggregate.prom").read_text())
    job = 'opsctl_job="metrics.aggregate"'
    assert {k: v for k, v in agg.items() if "export" in k} == {
        f'opsctl_exports{{{job},status="total"}}': 200.0,
        f'opsctl_exports{{{job},status="completed"}}': 180.0,
        f'opsctl_exports{{{job},status="failed"}}': 12.0,
        f"opsctl_export_failure_ratio{{{job}}}": 0.0625,
        f'opsctl_export_duration_seconds{{{job},quantile="0.5"}}': 1.5,
        f'opsctl_export_duration_seconds{{{job},quantile="0.95"}}': 8.0,
        f'opsctl_export_duration_seconds{{{job},quantile="0.99"}}': 12.5,
    }
    rate = samples((tmp_path / "opsctl_failure_rate_check.prom").read_text())
    job = 'opsctl_job="failure-rate.check"'
    assert rate[f'opsctl_exports{{{job},status="total"}}'] == 50.0
    assert rate[f"opsctl_export_failure_ratio{{{job}}}"] == 0.2
    assert rate[f"opsctl_failure_rate_alert{{{job}}}"] == 1.0
    for name in ("opsctl_metrics_aggregate.prom", "opsctl_failure_rate_check.prom"):
        checked = promtool_check_metrics((tmp_path / name).read_text())
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_health_checks_up_and_latency_by_check(tmp_path: Path) -> None:
    obs, _, _ = observer(tmp_path)
    checks = [{"check": "db", "state": "ok", "latency_ms": 12},
              {"check": "api gw", "state": "critical", "latency_ms": 1500},
              {"check": "disk", "state": "warning", "latency_ms": 0}]

    obs.run_ended(run_of("health.probe", 2, {"checks": checks}))

    got = samples((tmp_path / "opsctl_health_probe.prom").read_text())
    job = 'opsctl_job="health.probe"'
    assert {k: v for k, v in got.items() if "health_check" in k} == {
        f'opsctl_health_check_up{{check="db",{job}}}': 1.0,
        f'opsctl_health_check_up{{check="api gw",{job}}}': 0.0,
        f'opsctl_health_check_up{{check="disk",{job}}}': 0.0,
        f'opsctl_health_check_latency_seconds{{check="db",{job}}}': 0.012,
        f'opsctl_health_check_latency_seconds{{check="api gw",{job}}}': 1.5,
        f'opsctl_health_check_latency_seconds{{check="disk",{job}}}': 0.0,
    }


@pytest.mark.parametrize(("job", "name"), [
    ("metrics.aggregate", "opsctl_metrics_aggregate.prom"),
    ("failure-rate.check", "opsctl_failure_rate_check.prom"),
    ("files.cleanup", "opsctl_files_cleanup.prom"),
    ("logs.cleanup", "opsctl_logs_cleanup.prom"),
    ("health.probe", "opsctl_health_probe.prom"),
])
def test_textfile_names(job: str, name: str) -> None:
    assert textfile_name(job) == name


def test_a_missing_textfile_dir_is_a_warning_event_not_an_exception(tmp_path: Path) -> None:
    obs, events, _ = observer(tmp_path / "nope")

    obs.run_ended(run_of("files.cleanup", 0, **FILES_RUN))

    assert [(e["type"], e["level"], e["target"], e["error"]["kind"]) for e in events] == [
        ("prometheus_export_failed", "warning", "textfile", "write_failed")]
    assert str(tmp_path / "nope") in events[0]["error"]["message"]


def test_a_textfile_dir_that_is_a_file_is_a_warning_event(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    obs, events, _ = observer(not_a_dir)

    obs.run_ended(run_of("files.cleanup", 0))

    assert [(e["target"], e["error"]["kind"]) for e in events] == [("textfile", "write_failed")]


def test_node_exporter_reads_the_textfile_dir_without_error(
    node_exporter: Server, textfile_dir: Path
) -> None:
    obs, _, _ = observer(textfile_dir)
    obs.run_ended(run_of("files.cleanup", 0, **FILES_RUN))
    obs.run_ended(run_of("metrics.aggregate", 0, **AGGREGATE))

    scraped = http_get(node_exporter.url + "/metrics")

    assert "node_textfile_scrape_error 0" in scraped
    assert 'opsctl_files_deleted{opsctl_job="files.cleanup"} 40' in scraped
    assert ('opsctl_export_duration_seconds{opsctl_job="metrics.aggregate",quantile="0.95"} 8'
            in scraped)
    checked = promtool_check_metrics(scraped)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_push_lands_in_a_real_pushgateway_under_its_grouping_key(
    pushgateway: Server
) -> None:
    obs, events, _ = observer(pushgateway_url=pushgateway.url)

    obs.run_ended(run_of("files.cleanup", 1, **FILES_RUN))
    obs.run_ended(run_of("logs.cleanup", 0, deleted_count=7, archived_count=7))

    scraped = http_get(pushgateway.url + "/metrics")
    assert events == []
    assert ('opsctl_files_deleted{instance="cron-1",job="opsctl",opsctl_job="files.cleanup"} 40'
            in scraped)
    assert ('opsctl_log_rows_archived{instance="cron-1",job="opsctl",opsctl_job="logs.cleanup"}'
            " 7" in scraped)
    assert ('opsctl_job_exit_code{instance="cron-1",job="opsctl",opsctl_job="files.cleanup"} 1'
            in scraped)


def test_a_second_push_replaces_the_first(pushgateway: Server) -> None:
    obs, _, _ = observer(pushgateway_url=pushgateway.url)

    obs.run_ended(run_of("files.cleanup", 0, **FILES_RUN))
    obs.run_ended(run_of("files.cleanup", 3))

    scraped = http_get(pushgateway.url + "/metrics")
    assert "opsctl_files_deleted{" not in scraped
    assert ('opsctl_job_exit_code{instance="cron-1",job="opsctl",opsctl_job="files.cleanup"} 3'
            in scraped)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_pushgateway_is_a_warning_event(tmp_path: Path) -> None:
    obs, events, _ = observer(tmp_path, pushgateway_url=f"http://127.0.0.1:{closed_port()}")

    obs.run_ended(run_of("files.cleanup", 0, **FILES_RUN))

    assert (tmp_path / "opsctl_files_cleanup.prom").exists()  # the textfile still got written
    assert [(e["type"], e["target"], e["error"]["kind"]) for e in events] == [
        ("prometheus_export_failed", "pushgateway", "push_failed")]


def test_a_pushgateway_answering_500_is_a_warning_event(http_server: HttpServer) -> None:
    http_server.status = 500
    obs, events, _ = observer(pushgateway_url=http_server.url)

    obs.run_ended(run_of("files.cleanup", 0, **FILES_RUN))

    (request,) = http_server.requests
    assert request.method == "PUT"
    assert request.path == "/metrics/job/opsctl/instance/cron-1/opsctl_job/files.cleanup"
    assert [(e["target"], e["error"]["message"]) for e in events] == [
        ("pushgateway", "Pushgateway answered HTTP 500")]
