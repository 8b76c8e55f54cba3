"""``opsctl health probe`` through the real entry point, against real servers."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import HttpServer
from sqlalchemy import create_engine, select
from support import Cli, CliResult, isolated_env

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.domain.job_names import JOB_NAMES

COMMON = ("timestamp", "level", "message", "logger", "type", "job", "run_id", "host",
          "version")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


def config(tmp_path: Path, *checks: str, timeout_s: float = 10) -> str:
    path = tmp_path / "opsctl.toml"
    blocks = "".join(f"\n[[health.checks]]\n{block.strip()}\n" for block in checks)
    path.write_text(f"[health]\ntimeout_s = {timeout_s}\n{blocks}", encoding="utf-8")
    return str(path)


def probe(cli: Cli, cfg: str | None, *args: str, **kw: Any) -> CliResult:
    options = ["--config", cfg] if cfg else []
    return cli(*options, "health", "probe", *args, **kw)


def check_events(result: CliResult) -> dict[str, dict[str, Any]]:
    return {event["check"]: event for event in result.of_type("health_check")}


def recorded_runs(url: str) -> list[tuple[str, str, int]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(tables.runs.c.job, tables.runs.c.state,
                                       tables.runs.c.exit_code).order_by(tables.runs.c.id))
            return [(r.job, r.state, r.exit_code) for r in rows]
    finally:
        engine.dispose()


def fresh_database(url: str) -> None:
    db = Database(url)
    migrations.ensure_schema(db)
    db.dispose()


# --- verdicts and exit codes ------------------------------------------------------------


def test_healthy_probe_exits_0_with_one_event_per_check_then_the_summary(
    cli: Cli, db_url: str, tmp_path: Path, listening_port: int
) -> None:
    cfg = config(tmp_path, 'name = "db"\nkind = "database"',
                 f'name = "port"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {listening_port}',
                 f'name = "disk"\nkind = "disk"\npath = "{tmp_path}"\nmin_free_percent = 0')

    result = probe(cli, cfg)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert [e["type"] for e in result.events] == ["health_check"] * 3 + ["health_probe"]
    run_ids = {e["run_id"] for e in result.events}
    assert len(run_ids) == 1
    for event in result.events:
        assert all(field in event for field in COMMON)
        assert "status" not in event and event["job"] == "health.probe"
    db, port, disk = result.of_type("health_check")
    assert {k: db[k] for k in ("check", "kind", "state", "critical")} == {
        "check": "db", "kind": "database", "state": "ok", "critical": True}
    assert isinstance(db["latency_ms"], int) and "error" not in db
    assert (port["check"], port["kind"], port["state"]) == ("port", "tcp", "ok")
    assert (disk["check"], disk["kind"], disk["state"]) == ("disk", "disk", "ok")
    summary = result.one("health_probe")
    assert {k: summary[k] for k in ("state", "exit_code", "checks_total", "checks_failed",
                                    "failed_checks", "level")} == {
        "state": "healthy", "exit_code": 0, "checks_total": 3, "checks_failed": 0,
        "failed_checks": [], "level": "info"}
    assert isinstance(summary["duration_ms"], int)
    assert recorded_runs(db_url) == [("health.probe", "healthy", 0)]


def test_a_failing_check_with_critical_false_is_degraded_exit_1(
    sqlite_cli: Cli, tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.status = 503
    cfg = config(tmp_path, 'name = "db"\nkind = "database"',
                 f'name = "api"\nkind = "http"\nurl = "{http_server.url}/h"\ncritical = false')

    result = probe(sqlite_cli, cfg)

    assert result.exit_code == 1
    api = check_events(result)["api"]
    assert (api["state"], api["critical"], api["level"]) == ("warning", False, "warning")
    assert api["error"] == {"kind": "status", "message": "status 503 (expected 2xx or 3xx)"}
    assert api["detail"] == {"http_status": 503}
    summary = result.one("health_probe")
    assert (summary["state"], summary["exit_code"], summary["checks_failed"]) == (
        "degraded", 1, 1)


def test_a_failing_critical_check_is_unhealthy_exit_2(
    sqlite_cli: Cli, tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.status = 503
    cfg = config(tmp_path, f'name = "api"\nkind = "http"\nurl = "{http_server.url}/h"',
                 f'name = "slow"\nkind = "http"\nurl = "{http_server.url}/s"\n'
                 'expect_status = [503]\nmax_latency_ms = 100000')

    result = probe(sqlite_cli, cfg)

    assert result.exit_code == 2
    assert check_events(result)["api"]["state"] == "critical"
    assert check_events(result)["slow"]["state"] == "ok"
    summary = result.one("health_probe")
    assert (summary["state"], summary["exit_code"], summary["failed_checks"]) == (
        "unhealthy", 2, ["api"])
    assert result.of_type("error") == []


def test_a_database_that_is_down_is_unhealthy_exit_2_not_unknown(home: Path) -> None:
    url = f"postgresql+psycopg://postgres:pw-hidden@127.0.0.1:{closed_port()}/app"
    cli = Cli(isolated_env(home, url))

    result = probe(cli, None)

    assert result.exit_code == 2, result.stdout
    assert [e["type"] for e in result.events] == ["health_check", "health_probe"]
    db = result.one("health_check")
    assert (db["check"], db["kind"], db["state"]) == ("database", "database", "critical")
    assert db["error"]["kind"] == "database_unavailable"
    assert result.one("health_probe")["state"] == "unhealthy"
    assert "pw-hidden" not in result.stdout + result.stderr
    # The probe found the database down: no second connect timeout spent recording the run.
    assert "could not record the run" not in result.stderr


def test_an_unreachable_sqlite_database_is_unhealthy_too(home: Path) -> None:
    cli = Cli(isolated_env(home, "sqlite:////proc/opsctl-no-such-dir/opsctl.db"))

    result = probe(cli, None)

    assert result.exit_code == 2
    assert result.one("health_check")["error"]["kind"] == "database_unavailable"


def test_every_kind_together_on_real_servers(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer,
    listening_port: int, s3_endpoint: str, s3_bucket: str,
) -> None:
    fresh_database(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        now = datetime.now(UTC)
        conn.execute(tables.runs.insert().values(
            job="files.cleanup", run_id=str(uuid.uuid4()), host="h", started_at=now,
            finished_at=now, state="ok", exit_code=0, duration_ms=5, summary={}))
    engine.dispose()
    cfg = config(
        tmp_path,
        'name = "db"\nkind = "database"',
        f'name = "api"\nkind = "http"\nurl = "{http_server.url}/healthz"',
        f'name = "port"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {listening_port}',
        f'name = "bucket"\nkind = "s3"\nbucket = "{s3_bucket}"',
        f'name = "disk"\nkind = "disk"\npath = "{tmp_path}"\nmin_free_percent = 0',
        'name = "runs"\nkind = "sql"\nquery = "SELECT count(*) FROM opsctl_runs"\n'
        "warning = 10\ncritical = 20",
        'name = "cleanup-fresh"\nkind = "freshness"\njob = "files.cleanup"\nmax_age = "1h"',
    )
    env = {"OPSCTL_S3__ENDPOINT_URL": s3_endpoint, "OPSCTL_S3__REGION": "us-east-1",
           "OPSCTL_S3__ACCESS_KEY_ID": "testing",
           "OPSCTL_S3__SECRET_ACCESS_KEY": "testing-secret-key"}

    result = probe(sqlite_cli, cfg, env=env)

    assert result.exit_code == 0, result.stdout
    checks = check_events(result)
    assert {name: (e["kind"], e["state"]) for name, e in checks.items()} == {
        "db": ("database", "ok"), "api": ("http", "ok"), "port": ("tcp", "ok"),
        "bucket": ("s3", "ok"), "disk": ("disk", "ok"), "runs": ("sql", "ok"),
        "cleanup-fresh": ("freshness", "ok"),
    }
    assert checks["runs"]["detail"]["value"] == 1.0
    assert "testing-secret-key" not in result.stdout + result.stderr


# --- the deadline ---------------------------------------------------------------------------


def test_six_hanging_checks_with_a_1s_timeout_take_about_1s_not_6(
    sqlite_cli: Cli, tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.delay_s = 5.0
    cfg = config(tmp_path, *(f'name = "hang{i}"\nkind = "http"\nurl = "{http_server.url}/{i}"'
                             "\ntimeout_s = 1" for i in range(6)))

    result = probe(sqlite_cli, cfg)

    assert result.exit_code == 2
    checks = result.of_type("health_check")
    assert [e["error"]["kind"] for e in checks] == ["timeout"] * 6
    # The feature under test, not a benchmark: in parallel, the probe takes one timeout.
    assert result.one("health_probe")["duration_ms"] < 3000


def test_timeout_flag_is_the_probe_deadline_over_longer_check_timeouts(
    sqlite_cli: Cli, tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.delay_s = 5.0
    cfg = config(tmp_path, f'name = "hang"\nkind = "http"\nurl = "{http_server.url}"\n'
                 "timeout_s = 30\ncritical = false")

    result = probe(sqlite_cli, cfg, "--timeout", "0.5")

    assert result.exit_code == 1
    hang = result.one("health_check")
    assert hang["state"] == "warning"
    assert hang["error"] == {"kind": "timeout", "message": "no answer within 0.5s"}
    assert result.one("health_probe")["timeout_s"] == 0.5


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error(sqlite_cli: Cli, value: str) -> None:
    result = probe(sqlite_cli, None, "--timeout", value)

    assert result.exit_code == 64
    assert result.one("error")["error"]["kind"] == "usage"


# --- --check ---------------------------------------------------------------------------------


def test_check_runs_only_the_named_checks(
    sqlite_cli: Cli, tmp_path: Path, listening_port: int
) -> None:
    cfg = config(tmp_path, 'name = "db"\nkind = "database"',
                 f'name = "down"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {closed_port()}',
                 f'name = "up"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {listening_port}')

    result = probe(sqlite_cli, cfg, "--check", "up", "--check", "db")

    assert result.exit_code == 0
    assert [e["check"] for e in result.of_type("health_check")] == ["db", "up"]
    assert result.one("health_probe")["checks_total"] == 2


def test_an_unknown_check_is_a_usage_error_listing_the_configured_names(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    cfg = config(tmp_path, 'name = "db"\nkind = "database"',
                 f'name = "disk"\nkind = "disk"\npath = "{tmp_path}"')

    result = probe(sqlite_cli, cfg, "--check", "dsk")

    assert result.exit_code == 64
    [error] = result.events
    assert (error["type"], error["exit_code"]) == ("error", 64)
    assert error["error"] == {"kind": "usage",
                              "message": "unknown check 'dsk'; configured checks: db, disk"}
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # nothing ran


def test_without_configured_checks_the_database_and_the_storage_root_are_probed(
    sqlite_cli: Cli, home: Path
) -> None:
    (home / "data" / "opsctl" / "exports").mkdir(parents=True)

    result = probe(sqlite_cli, None)

    checks = result.of_type("health_check")
    assert [(e["check"], e["kind"]) for e in checks] == [("database", "database"),
                                                         ("storage", "disk")]
    assert checks[1]["detail"]["path"] == str(home / "data" / "opsctl" / "exports")


def test_without_configured_checks_an_s3_storage_bucket_is_probed(
    sqlite_cli: Cli, s3_endpoint: str, s3_bucket: str
) -> None:
    env = {"OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": s3_bucket,
           "OPSCTL_S3__ENDPOINT_URL": s3_endpoint, "OPSCTL_S3__REGION": "us-east-1",
           "OPSCTL_S3__ACCESS_KEY_ID": "testing",
           "OPSCTL_S3__SECRET_ACCESS_KEY": "testing-secret-key"}

    result = probe(sqlite_cli, None, env=env)

    assert result.exit_code == 0
    storage = check_events(result)["storage"]
    assert (storage["kind"], storage["state"], storage["detail"]) == (
        "s3", "ok", {"bucket": s3_bucket})


# --- history -------------------------------------------------------------------------------


def test_the_probe_is_recorded_so_a_freshness_check_can_watch_it(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    watch = config(tmp_path, 'name = "probe-fresh"\nkind = "freshness"\njob = "health.probe"\n'
                   'max_age = "1h"')

    first = probe(sqlite_cli, watch)
    second = probe(sqlite_cli, watch)

    assert first.one("health_check")["error"]["kind"] == "never_run"
    # The unhealthy first probe still ran and judged: it keeps the probe fresh.
    assert (first.exit_code, second.exit_code) == (2, 0)
    # Seconds since the first probe ended: 0 on an idle machine, more on a loaded one.
    assert 0 <= second.one("health_check")["detail"]["age_s"] < 60
    assert recorded_runs(sqlite_url) == [("health.probe", "unhealthy", 2),
                                         ("health.probe", "healthy", 0)]


@pytest.mark.parametrize("job", JOB_NAMES)
def test_a_freshness_check_watches_every_job_the_runner_runs(
    sqlite_cli: Cli, tmp_path: Path, job: str
) -> None:
    watch = config(tmp_path, f'name = "fresh"\nkind = "freshness"\njob = "{job}"\n'
                   'max_age = "1h"')

    result = probe(sqlite_cli, watch)

    assert result.exit_code == 2, result.stdout  # never run: critical, not a config error
    assert result.one("health_check")["error"]["kind"] == "never_run"


def test_a_dry_run_probe_records_nothing(sqlite_cli: Cli, sqlite_url: str) -> None:
    fresh_database(sqlite_url)

    result = probe(sqlite_cli, None, env={"OPSCTL_DRY_RUN": "1"})

    assert result.exit_code == 0
    assert recorded_runs(sqlite_url) == []


def test_a_dry_run_probe_creates_no_database(sqlite_cli: Cli, sqlite_url: str) -> None:
    result = probe(sqlite_cli, None, env={"OPSCTL_DRY_RUN": "1"})

    assert result.exit_code == 2
    assert result.one("health_check")["error"]["kind"] == "not_found"
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_a_first_probe_on_a_fresh_install_is_healthy(sqlite_cli: Cli, sqlite_url: str) -> None:
    result = probe(sqlite_cli, None)

    assert result.exit_code == 0
    assert recorded_runs(sqlite_url) == [("health.probe", "healthy", 0)]


# --- text and nagios views -----------------------------------------------------------------


def test_text_view_has_a_row_per_check_and_the_verdict(
    sqlite_cli: Cli, tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.status = 503
    cfg = config(tmp_path, 'name = "db"\nkind = "database"',
                 f'name = "api"\nkind = "http"\nurl = "{http_server.url}"')

    result = probe(sqlite_cli, cfg, output="text", env={"COLUMNS": "150"})

    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "unhealthy: 1 of 2 checks failed (api)"
    assert re.search(r"^check +kind +state +value +latency +reason", lines[1])
    (db,) = [line for line in lines if line.startswith("db ")]
    assert re.search(r"^db +database +ok +\d+ ms *$", db)
    (api,) = [line for line in lines if line.startswith("api ")]
    assert re.search(r"^api +http +critical +HTTP 503 +\d+ ms +status 503 \(expected", api)
    assert re.search(r"^2 checks in \d+ ms$", lines[-1])
    assert "health_check" not in result.stderr and "api: critical" not in result.stderr


def test_nagios_format_prints_one_plugin_line_with_perfdata_even_in_json_mode(
    sqlite_cli: Cli, tmp_path: Path, http_server: HttpServer
) -> None:
    http_server.status = 503
    cfg = config(tmp_path, 'name = "db"\nkind = "database"',
                 f'name = "api gw"\nkind = "http"\nurl = "{http_server.url}"\ncritical = false\n'
                 "max_latency_ms = 5000")

    result = sqlite_cli("--output", "json", "--config", cfg, "health", "probe",
                        "--format", "nagios", output=None)

    assert result.exit_code == 1
    assert re.fullmatch(r"OPSCTL HEALTH WARNING - 1 of 2 checks failed: api gw warning \(status\) "
                        r"\| 'db_latency'=\d+ms;;;0 'api gw_latency'=\d+ms;;5000;0\n",
                        result.stdout)


def test_nagios_ok_line(sqlite_cli: Cli, sqlite_url: str) -> None:
    fresh_database(sqlite_url)

    result = probe(sqlite_cli, None, "--format", "nagios", output=None)

    assert result.exit_code == 0
    assert re.fullmatch(r"OPSCTL HEALTH OK - 1 checks ok \| 'database_latency'=\d+ms;;;0\n",
                        result.stdout)


def test_nagios_perfdata_carries_each_checks_value_with_its_levels(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    fresh_database(sqlite_url)
    cfg = config(
        tmp_path,
        f'name = "disk"\nkind = "disk"\npath = "{tmp_path}"\nmin_free_percent = 0',
        'name = "queue"\nkind = "sql"\nquery = "SELECT 42"\nwarning = 40\ncritical = 100',
        'name = "low"\nkind = "sql"\nquery = "SELECT 3"\nwarning = 10\ncritical = 5\n',
        'name = "fresh"\nkind = "freshness"\njob = "files.cleanup"\nmax_age = "1h"\n'
        "critical = false",
    )

    result = probe(sqlite_cli, cfg, "--format", "nagios", output=None)

    assert result.exit_code == 2, result.stdout
    line = result.stdout
    assert line.count("\n") == 1 and line.startswith("OPSCTL HEALTH CRITICAL - 3 of 4 checks "
                                                      "failed: queue warning (threshold), low "
                                                      "critical (threshold), fresh warning "
                                                      "(never_run) | ")
    assert re.search(r" 'disk_free'=\d+(\.\d+)?%;5:;0:;0;100 ", line)
    assert " 'queue_value'=42;40;100 " in line
    assert " 'low_value'=3;10:;5: " in line
    assert line.endswith(" 'fresh_age'=U;;3600;0\n")


def test_nagios_error_is_one_unknown_line_on_stdout(home: Path, tmp_path: Path) -> None:
    cli = Cli(isolated_env(home, f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/x"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[health]\ntimeout_s = -1\n")

    result = cli("--config", str(bad), "health", "probe", "--format", "nagios", output=None)

    assert result.exit_code == 78
    assert result.stdout.startswith("OPSCTL HEALTH UNKNOWN - config: health.timeout_s: ")
    assert result.stdout.count("\n") == 1
