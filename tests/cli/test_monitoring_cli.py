"""Heartbeats and Prometheus through the real entry point: what a real run sends and
writes, what dry runs and lock-skipped runs do not, bad configuration, secrets."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import HttpServer
from prometheus_servers import promtool_check_metrics
from sqlalchemy.engine import make_url
from support import Cli, CliResult, export_row, insert_exports

from opsctl.adapters.db import locks
from opsctl.adapters.db.database import Database

KEY = "hc-K3y-5ecret-0123456789"
CHECK = ("failure-rate", "check")


def seed(url: str, completed: int = 20, failed: int = 1) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC) - timedelta(minutes=5)
    insert_exports(url, [export_row(status="completed", created_at=at) for _ in range(completed)]
                   + [export_row(status="failed", error_type="timeout", created_at=at)
                      for _ in range(failed)])


def write_config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "opsctl.toml"
    path.write_text(body, encoding="utf-8")
    return str(path)


def no_secret(result: CliResult, *secrets: str) -> None:
    for secret in (KEY, *secrets):
        assert secret not in result.stdout and secret not in result.stderr


# --- heartbeats ----------------------------------------------------------------------------


def test_healthchecks_pings_start_then_success_with_the_summary(
    cli: Cli, db_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(db_url)
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/ping/{KEY}/{{job}}"\n')

    result = cli("--config", cfg, *CHECK)

    assert result.exit_code == 0
    run_id = result.events[0]["run_id"]
    start, end = http_server.requests
    assert (start.method, start.path) == (
        "GET", f"/ping/{KEY}/failure-rate-check/start?rid={run_id}")
    assert (end.method, end.path) == ("POST", f"/ping/{KEY}/failure-rate-check?rid={run_id}")
    summary = result.events[-1]
    assert summary["type"] == "failure_rate_check"  # still the last line
    body = json.loads(end.body)
    # The same line, stamped when the ping left (just before the line was printed).
    assert body.pop("timestamp") <= summary.pop("timestamp")
    assert body == summary
    sent = result.of_type("heartbeat_sent")
    assert [(e["phase"], e["ok"]) for e in sent] == [("start", True), ("success", True)]
    assert all(e["job"] == "failure-rate.check" and e["run_id"] == run_id for e in sent)
    no_secret(result)


def test_a_failing_run_pings_fail(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url)
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/{KEY}"\n'
                       '[source]\ntable = "no_such_table"\n')

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code not in (0, 1, 2)
    assert http_server.requests[-1].path.startswith(f"/{KEY}/fail?rid=")
    assert json.loads(http_server.requests[-1].body)["type"] == "error"
    assert result.events[-1]["type"] == "error"


@pytest.mark.parametrize("jobs_table", [
    '[heartbeat.jobs]\nfailure-rate.check = "{url}/own/{key}"\n',
    '[heartbeat.jobs]\n"failure-rate.check" = "{url}/own/{key}"\n',
])
def test_a_job_url_overrides_the_template_whether_dotted_or_quoted(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer, jobs_table: str
) -> None:
    seed(sqlite_url)
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/tpl/{{job}}"\n'
                       + jobs_table.format(url=http_server.url, key=KEY))

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 0
    assert [r.path.split("?")[0] for r in http_server.requests] == [
        f"/own/{KEY}/start", f"/own/{KEY}"]
    no_secret(result)


def test_cronitor_style(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url, completed=8, failed=2)
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/p/{KEY}/{{job}}"\n'
                       'style = "cronitor"\n')

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 2
    run_id = result.events[0]["run_id"]
    assert [r.path for r in http_server.requests] == [
        f"/p/{KEY}/failure-rate-check?state=run&series={run_id}",
        f"/p/{KEY}/failure-rate-check?state=complete&series={run_id}&status_code=2"]


def test_an_endpoint_answering_500_changes_no_exit_code(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url, completed=8, failed=2)
    http_server.status = 500
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/{KEY}"\n')

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 2
    assert len(http_server.requests) == 4  # each ping tried twice
    assert [(e["phase"], e["ok"], e["level"]) for e in result.of_type("heartbeat_sent")] == [
        ("start", False, "warning"), ("success", False, "warning")]
    no_secret(result)


def test_an_endpoint_that_never_answers_changes_no_exit_code(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url)
    http_server.delay_s = 60
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/{KEY}"\n'
                       "timeout_s = 0.3\n")

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 0
    assert result.events[-1]["type"] == "failure_rate_check"
    assert [(e["phase"], e["ok"], e["error"]["kind"])
            for e in result.of_type("heartbeat_sent")] == [
        ("start", False, "timeout"), ("success", False, "timeout")]


def test_a_dry_run_pings_nothing(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url)
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/{KEY}"\n'
                       f'[prometheus]\ntextfile_dir = "{tmp_path}"\n')

    result = sqlite_cli("--config", cfg, *CHECK, "--dry-run")
    forced = sqlite_cli("--config", cfg, *CHECK, env={"OPSCTL_DRY_RUN": "1"})

    assert result.exit_code == forced.exit_code == 0
    assert http_server.requests == []
    assert not list(tmp_path.glob("*.prom"))


@pytest.fixture
def held_lock(db_url: str) -> Iterator[None]:
    seed(db_url)
    db = Database(db_url)
    with locks.job_lock(db, "failure-rate.check"):
        yield
    db.dispose()


def test_a_run_skipped_by_the_lock_pings_nothing(
    cli: Cli, tmp_path: Path, http_server: HttpServer, held_lock: None
) -> None:
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "{http_server.url}/{KEY}"\n'
                       f'[prometheus]\ntextfile_dir = "{tmp_path}"\n')

    result = cli("--config", cfg, *CHECK)

    assert result.exit_code == 75
    assert http_server.requests == []
    assert not list(tmp_path.glob("*.prom"))


def test_heartbeat_urls_are_redacted_in_config_show(sqlite_cli: Cli, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f'[heartbeat]\nurl = "https://hc.example/{KEY}/{{job}}"\n'
                       f'[heartbeat.jobs]\nlogs.cleanup = "https://hc.example/{KEY}-logs"\n')

    result = sqlite_cli("--config", cfg, "config", "show")

    shown = result.one("config")["config"]["heartbeat"]
    assert shown == {"url": "***", "jobs": {"logs.cleanup": "***"}, "style": "healthchecks",
                     "timeout_s": 5}
    no_secret(result)


def test_every_job_the_runner_runs_may_have_its_own_heartbeat(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, f'[heartbeat.jobs]\nlogs.restore = "https://hc.example/{KEY}-1"\n'
                       f'"files.audit" = "https://hc.example/{KEY}-2"\n')

    result = sqlite_cli("--config", cfg, "config", "show")

    assert result.one("config")["config"]["heartbeat"]["jobs"] == {
        "logs.restore": "***", "files.audit": "***"}
    no_secret(result)


@pytest.mark.parametrize(("body", "key"), [
    (f'[heartbeat]\nurl = "ftp://hc.example/{KEY}"\n', "heartbeat.url"),
    (f'[heartbeat]\nurl = "hc.example/{KEY}"\n', "heartbeat.url"),
    (f'[heartbeat]\nurl = "https://hc.example/{KEY}/{{host}}"\n', "heartbeat.url"),
    (f'[heartbeat]\nurl = "https://hc.example/{KEY}/{{job"\n', "heartbeat.url"),
    ('[heartbeat]\nstyle = "pingdom"\n', "heartbeat.style"),
    ("[heartbeat]\ntimeout_s = -1\n", "heartbeat.timeout_s"),
    (f'[heartbeat.jobs]\n"files.clean" = "https://hc.example/{KEY}"\n',
     "heartbeat.jobs.files.clean"),
    (f'[heartbeat.jobs]\nlogs.cleanup = "not a url {KEY}"\n', "heartbeat.jobs.logs.cleanup"),
    (f'[heartbeat.jobs]\nlogs.cleanup = "https://hc.example/{KEY}/{{x}}"\n',
     "heartbeat.jobs.logs.cleanup"),
    ('[prometheus]\npushgateway_url = "pushgateway:9091"\n', "prometheus.pushgateway_url"),
    ("[prometheus]\ntimeout_s = 0\n", "prometheus.timeout_s"),
    ('[alerts]\nalertmanager_url = "alertmanager"\n', "alerts.alertmanager_url"),
    ('[alerts]\nalertmanager_ttl = "0s"\n', "alerts.alertmanager_ttl"),
    ('[alerts]\nalertmanager_ttl = "soon"\n', "alerts.alertmanager_ttl"),
])
def test_bad_monitoring_config_exits_78_naming_the_key(
    sqlite_cli: Cli, tmp_path: Path, body: str, key: str
) -> None:
    cfg = write_config(tmp_path, body)

    for result in (sqlite_cli("--config", cfg, *CHECK),
                   sqlite_cli("config", "validate", cfg)):
        assert result.exit_code == 78
        error = result.one("error")["error"]
        assert error["message"].startswith(f"{key}: ") or f" {key}: " in error["message"]
        no_secret(result)


# --- Prometheus ----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_run_writes_its_textfile_and_keeps_the_last_success(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    seed(db_url)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    prometheus = f'[prometheus]\ntextfile_dir = "{textfiles}"\n'
    (tmp_path / "exports").mkdir()
    cfg = write_config(tmp_path, prometheus + f'[storage]\nroot = "{tmp_path / "exports"}"\n')
    # The same job against storage that cannot be reached: exit 3, database fine.
    unreachable = tmp_path / "s3.toml"
    unreachable.write_text(prometheus + '[storage]\nbackend = "s3"\nbucket = "gone"\n'
                           f'[s3]\nendpoint_url = "http://127.0.0.1:{closed_port()}"\n'
                           "connect_timeout_s = 1\nmax_attempts = 1\n")
    prom = textfiles / "opsctl_files_cleanup.prom"
    s3_env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
              "AWS_DEFAULT_REGION": "us-east-1"}

    first = cli("--config", cfg, "files", "cleanup")
    good = prom.read_text()
    insert_exports(db_url, [export_row(file_path="a/b.json",
                                       expires_at=datetime.now(UTC) - timedelta(days=1))])
    second = cli("--config", str(unreachable), "files", "cleanup", env=s3_env)
    bad = prom.read_text()

    assert first.exit_code == 0 and second.exit_code == 3, second.stdout
    job = '{opsctl_job="files.cleanup"}'
    last_success = f"opsctl_job_last_success_timestamp_seconds{job} "
    assert value(good, last_success) == value(bad, last_success)
    finished = datetime.fromisoformat(first.events[-1]["timestamp"]).timestamp()
    assert abs(value(good, last_success) - finished) < 5
    assert value(good, f"opsctl_job_exit_code{job} ") == 0
    assert value(bad, f"opsctl_job_exit_code{job} ") == 3
    assert value(good, f"opsctl_files_deleted{job} ") == 0
    assert "opsctl_files_deleted{" not in bad
    for body in (good, bad):
        checked = promtool_check_metrics(body)
        assert checked.returncode == 0, checked.stderr


def value(body: str, prefix: str) -> float:
    line = next(line for line in body.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


def test_a_missing_textfile_dir_warns_and_keeps_the_exit_code(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    seed(sqlite_url, completed=8, failed=2)
    cfg = write_config(tmp_path, f'[prometheus]\ntextfile_dir = "{tmp_path / "nope"}"\n')

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 2
    failed = result.one("prometheus_export_failed")
    assert failed["level"] == "warning" and failed["target"] == "textfile"
    assert result.events[-1]["type"] == "failure_rate_check"


def test_config_validate_warns_about_an_unusable_textfile_dir(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for target in (tmp_path / "nope", a_file):
        cfg = write_config(tmp_path, f'[prometheus]\ntextfile_dir = "{target}"\n')

        result = sqlite_cli("config", "validate", cfg)

        assert result.exit_code == 0
        valid = result.one("config_valid")
        assert [w["key"] for w in valid["warnings"]] == ["prometheus.textfile_dir"]
        assert str(target) in valid["warnings"][0]["message"]


def test_config_validate_has_no_warning_for_a_usable_textfile_dir(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, f'[prometheus]\ntextfile_dir = "{tmp_path}"\n')

    assert sqlite_cli("config", "validate", cfg).one("config_valid")["warnings"] == []


@pytest.mark.parametrize("configured", [False, True])
def test_a_watched_run_imports_no_prometheus_library(
    home: Path, sqlite_url: str, tmp_path: Path, configured: bool
) -> None:
    seed(sqlite_url)
    cfg = write_config(tmp_path, f'[prometheus]\ntextfile_dir = "{tmp_path}"\n'
                       if configured else "")
    env: dict[str, Any] = {"HOME": str(home), "OPSCTL_DATABASE__URL": sqlite_url}
    probe = (
        "import sys, io\n"
        "from opsctl.cli.main import main\n"
        "out = io.StringIO()\n"
        f"version = main(['--version'], environ={env!r}, stdout=out, stderr=io.StringIO())\n"
        "after_version = 'prometheus_client' in sys.modules\n"
        f"code = main(['--config', {cfg!r}, 'failure-rate', 'check'], environ={env!r},\n"
        "            stdout=out, stderr=io.StringIO())\n"
        "print(version, after_version, code, 'prometheus_client' in sys.modules,\n"
        "      'opsctl.adapters.observers.prometheus' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    # opsctl writes the text format itself; its observer loads only when configured.
    assert out.strip().splitlines()[-1] == f"0 False 0 False {configured}"
    if configured:
        assert (tmp_path / "opsctl_failure_rate_check.prom").exists()


def test_pushgateway_credentials_go_as_basic_auth_and_stay_secret(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url)
    password = "Pgw-pa55:w/rd"  # percent-encoded in the URL, as a URL needs it
    host = http_server.url.removeprefix("http://")
    encoded = quote(password, safe="")
    cfg = write_config(tmp_path, '[prometheus]\npushgateway_url = '
                       f'"http://pusher:{encoded}@{host}/pgw"\n')

    result = sqlite_cli("--config", cfg, *CHECK)
    shown = sqlite_cli("--config", cfg, "config", "show")

    assert result.exit_code == 0, result.stdout
    assert result.of_type("prometheus_export_failed") == []
    (push,) = http_server.requests
    assert push.path.startswith("/pgw/metrics/job/opsctl/")
    expected = base64.b64encode(f"pusher:{password}".encode()).decode()
    assert push.headers["Authorization"] == f"Basic {expected}"
    assert shown.one("config")["config"]["prometheus"]["pushgateway_url"] == (
        f"http://pusher:***@{host}/pgw")
    no_secret(result, password, encoded)
    no_secret(shown, password, encoded)
