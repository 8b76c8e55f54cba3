"""``opsctl status`` and ``opsctl schedule show`` through the real entry point, on both
databases, with history crafted relative to the real clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from support import Cli, database_snapshot, export_row, insert_exports

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.locks import job_lock

EVERY_MINUTE = "* * * * *"


def now() -> datetime:
    return datetime.now(UTC)


def run_row(job: str, started: datetime, exit_code: int = 0, *,
            error: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "job": job, "run_id": str(uuid.uuid4()), "host": "test", "started_at": started,
        "finished_at": started + timedelta(seconds=2),
        "state": "ok" if exit_code in (0, 1, 2) else "error", "exit_code": exit_code,
        "duration_ms": 2000, "summary": {}, "error": error,
    }


def make_dir(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def insert(url: str, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), list(rows))
    finally:
        engine.dispose()


def schedules(**jobs: str) -> dict[str, str]:
    env = {f"OPSCTL_SCHEDULE__{job.upper()}": cron for job, cron in jobs.items()}
    return env


ALL_EVERY_MINUTE = schedules(metrics__aggregate=EVERY_MINUTE,
                             failure_rate__check=EVERY_MINUTE, files__cleanup="",
                             logs__cleanup=EVERY_MINUTE, health__probe=EVERY_MINUTE)


@pytest.fixture
def crafted(cli: Cli, db_url: str) -> str:
    """History, alerts and exports with known answers (see the test below)."""
    assert cli("db", "init").exit_code == 0
    t = now()
    insert(db_url, tables.runs, [
        run_row("metrics.aggregate", t - timedelta(seconds=30)),
        run_row("failure-rate.check", t - timedelta(hours=1), 2),
        run_row("health.probe", t - timedelta(minutes=2)),
        run_row("health.probe", t - timedelta(minutes=1), 3,
                error={"kind": "database_unavailable", "message": "db [/x] <down>"}),
    ])
    insert(db_url, tables.alert_state, [{
        "name": "failure_rate", "state": "open", "opened_at": t - timedelta(minutes=20),
        "last_notified_at": t - timedelta(minutes=20), "updated_at": t,
        "details": {"severity": "critical"}}])
    recent = t - timedelta(minutes=10)
    rows = [export_row(created_at=recent) for _ in range(8)]
    rows += [export_row(created_at=recent, status="failed", error_type="Timeout")
             for _ in range(2)]
    rows += [export_row(created_at=t - timedelta(hours=2), status="failed")]  # out of window
    rows += [export_row(created_at=t - timedelta(days=40)) for _ in range(3)]
    expired = t - timedelta(hours=1)
    rows += [export_row(created_at=t - timedelta(days=8), expires_at=expired,
                        file_path=f"f/{i}.json") for i in range(2)]
    rows += [export_row(created_at=t - timedelta(days=8), expires_at=expired,
                        file_path="f/gone.json", status="expired"),
             export_row(created_at=t - timedelta(days=8), expires_at=expired, file_path=None)]
    insert_exports(db_url, rows)
    return db_url


def test_status_reports_every_job_alerts_rate_and_pending_work(cli: Cli, crafted: str) -> None:
    before = database_snapshot(crafted)
    result = cli("status", env=ALL_EVERY_MINUTE)

    assert result.exit_code == 2, result.stdout + result.stderr
    (report,) = result.events
    assert report["type"] == "status_report" and report["state"] == "critical"
    assert "status" not in report
    jobs = {row["job"]: row for row in report["jobs"]}
    assert list(jobs) == ["metrics.aggregate", "failure-rate.check", "files.cleanup",
                          "logs.cleanup", "health.probe"]
    assert {job: row["overdue"] for job, row in jobs.items()} == {
        "metrics.aggregate": False, "failure-rate.check": True, "files.cleanup": False,
        "logs.cleanup": False,  # never ran, but the tables are brand new
        "health.probe": False}
    assert jobs["health.probe"]["last_exit_code"] == 3
    assert jobs["health.probe"]["last_state"] == "error"
    assert jobs["health.probe"]["last_success_at"] < jobs["health.probe"]["last_run_at"]
    assert jobs["failure-rate.check"]["last_exit_code"] == 2
    assert jobs["logs.cleanup"]["last_run_at"] is None
    assert set(jobs["metrics.aggregate"]) >= {"job", "last_run_at", "last_state",
                                               "last_exit_code", "last_success_at", "overdue"}
    assert [a["name"] for a in report["open_alerts"]] == ["failure_rate"]
    assert report["failure_rate"] == 0.2
    assert (report["completed"], report["failed"]) == (8, 2)
    assert report["pending_log_rows"] == 3
    assert report["pending_files"] == 2
    assert report["findings"] == [
        "failure-rate.check is overdue", "alert failure_rate is open",
        "failure rate 20.0% over the last 1h (> 10%)", "health.probe's last run failed (exit 3)"]
    assert database_snapshot(crafted) == before  # read-only, and not recorded as a run


def test_status_text_fits_80_columns_and_shows_odd_text_literally(cli: Cli, crafted: str) -> None:
    insert(crafted, tables.alert_state, [{
        "name": "[/x]<script>", "state": "open", "opened_at": now(),
        "last_notified_at": None, "updated_at": now(), "details": {}}])
    result = cli("status", output="text", env=ALL_EVERY_MINUTE)

    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "alert [/x]<script> open for 0s" in result.stdout
    header = next(line for line in lines if line.strip().startswith("job"))
    assert header.split() == ["job", "run", "state", "exit", "ok", "overdue"]  # "last" above
    assert "OVERDUE" in result.stdout and "waiting for cleanup: 3 log rows, 2 files" in (
        result.stdout)


def test_status_warning_when_the_rate_is_above_warning_only(cli: Cli, db_url: str) -> None:
    t = now()
    rows = [export_row(created_at=t - timedelta(minutes=5)) for _ in range(14)]
    rows += [export_row(created_at=t - timedelta(minutes=5), status="failed")]
    make_dir(db_url)
    insert_exports(db_url, rows)

    result = cli("status")

    assert result.exit_code == 1
    report = result.one("status_report")
    assert report["state"] == "warning" and report["failure_rate"] == round(1 / 15, 4)
    assert report["findings"] == ["failure rate 6.7% over the last 1h (> 5%)"]


def test_status_ok_without_opsctl_tables_and_without_finished_exports(
    cli: Cli, db_url: str
) -> None:
    make_dir(db_url)
    insert_exports(db_url, [export_row(created_at=now(), status="processing")])

    result = cli("status")

    assert result.exit_code == 0
    report = result.one("status_report")
    assert report["state"] == "ok" and report["failure_rate"] is None
    assert all(row["last_run_at"] is None and not row["overdue"] for row in report["jobs"])
    assert report["history_since"] is None and report["open_alerts"] == []


def test_a_running_job_is_not_overdue(cli: Cli, crafted: str) -> None:
    db = Database(crafted)
    try:
        with job_lock(db, "failure-rate.check"):
            result = cli("status", env=ALL_EVERY_MINUTE)
    finally:
        db.dispose()
    jobs = {row["job"]: row for row in result.one("status_report")["jobs"]}
    assert jobs["failure-rate.check"]["running"] is True
    assert jobs["failure-rate.check"]["overdue"] is False
    assert jobs["metrics.aggregate"]["running"] is False


def test_status_database_down_is_3_with_an_error_event(home: Any) -> None:
    from support import isolated_env

    cli = Cli(isolated_env(home, "postgresql+psycopg://postgres@127.0.0.1:9/none"))
    result = cli("status", env={"OPSCTL_DATABASE__CONNECT_TIMEOUT_S": "1"})

    assert result.exit_code == 3
    assert result.one("error")["error"]["kind"] == "database_unavailable"
    assert "Traceback" not in result.stderr


def test_schedule_show_reports_cron_next_runs_and_overdue(cli: Cli, crafted: str) -> None:
    result = cli("schedule", "show", env=ALL_EVERY_MINUTE)

    assert result.exit_code == 2
    report = result.one("schedule_report")
    assert report["state"] == "critical" and report["overdue_jobs"] == ["failure-rate.check"]
    jobs = {row["job"]: row for row in report["jobs"]}
    assert jobs["files.cleanup"]["cron"] == "" and jobs["files.cleanup"]["next_runs"] == []
    runs = [datetime.fromisoformat(s) for s in jobs["health.probe"]["next_runs"]]
    assert len(runs) == 3 and all(r.second == 0 for r in runs)
    assert runs[1] - runs[0] == runs[2] - runs[1] == timedelta(minutes=1)
    for row in report["jobs"]:
        assert set(row) >= {"job", "cron", "next_runs", "last_run_at", "last_success_at",
                            "overdue"}


def test_schedule_show_defaults_and_exit_0(cli: Cli, db_url: str) -> None:
    result = cli("schedule", "show")

    assert result.exit_code == 0
    jobs = {row["job"]: row["cron"] for row in result.one("schedule_report")["jobs"]}
    assert jobs == {"metrics.aggregate": "0 * * * *", "failure-rate.check": "*/5 * * * *",
                    "files.cleanup": "0 2 * * *", "logs.cleanup": "0 3 1 * *",
                    "health.probe": "* * * * *"}
    runs = result.one("schedule_report")["jobs"][3]["next_runs"]
    assert all(datetime.fromisoformat(r).day == 1 and datetime.fromisoformat(r).hour == 3
               for r in runs)


@pytest.mark.parametrize(
    ("value", "key"),
    [("61 * * * *", "schedule.health.probe"), ("* * * * * *", "schedule.health.probe"),
     ("@reboot", "schedule.health.probe")],
)
def test_invalid_cron_is_78_naming_the_key(sqlite_cli: Cli, value: str, key: str) -> None:
    result = sqlite_cli("schedule", "show", env={"OPSCTL_SCHEDULE__HEALTH__PROBE": value})

    assert result.exit_code == 78
    assert result.one("error")["error"]["message"].startswith(f"{key}: ")


def test_status_as_a_nagios_plugin(cli: Cli, crafted: str) -> None:
    result = cli("status", "--format", "nagios", env=ALL_EVERY_MINUTE, output=None)

    assert result.exit_code == 2
    (line,) = result.stdout.splitlines()
    status, perfdata = line.split(" | ")
    assert status.startswith("OPSCTL STATUS CRITICAL - critical: failure-rate.check is overdue")
    items = perfdata.split()
    assert items[:5] == ["'overdue_jobs'=1;;0;0;5", "'open_alerts'=1;;0;0",
                         "'failure_ratio'=0.2;0.05;0.1;0;1", "'pending_log_rows'=3;;;0",
                         "'pending_files'=2;;;0"]
    ages = dict(item.split("=", 1) for item in items[5:])
    assert set(ages) == {"'metrics.aggregate_last_success_age'",
                         "'failure-rate.check_last_success_age'",
                         "'logs.cleanup_last_success_age'", "'health.probe_last_success_age'"}
    assert ages["'logs.cleanup_last_success_age'"] == "U;;;0"
    assert 3590 <= int(ages["'failure-rate.check_last_success_age'"].split("s")[0]) <= 3700


def test_schedule_show_as_a_nagios_plugin_ok_and_unknown(cli: Cli, db_url: str, home: Any) -> None:
    ok = cli("schedule", "show", "--format", "nagios", output=None)
    assert ok.exit_code == 0
    assert ok.stdout.startswith("OPSCTL SCHEDULE OK - 5 scheduled jobs, none overdue | "
                                "'overdue_jobs'=0;;0;0;5 ")

    from support import isolated_env

    down = Cli(isolated_env(home, "postgresql+psycopg://postgres@127.0.0.1:9/none"))(
        "schedule", "show", "--format", "nagios", output=None,
        env={"OPSCTL_DATABASE__CONNECT_TIMEOUT_S": "1"})
    assert down.exit_code == 3
    assert down.stdout.startswith("OPSCTL SCHEDULE UNKNOWN - database_unavailable: ")
    assert len(down.stdout.splitlines()) == 1


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("command", ["status", "schedule show"])
def test_text_views_keep_job_names_and_verdicts_whole(
    cli: Cli, crafted: str, width: int, command: str
) -> None:
    # What a terminal of that width sets, in the run's own environment.
    result = cli(*command.split(), output="text", env={**ALL_EVERY_MINUTE, "COLUMNS": str(width)})

    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if line.strip().startswith("job"))
    assert "overdue" in header.split() and "…" not in header
    row = next(line for line in lines if line.strip().startswith("failure-rate.check"))
    assert row.split()[0] == "failure-rate.check" and row.split()[-1] == "OVERDUE"
    if width >= 80:
        assert "cron" in header.split() or "state" in header.split()


@pytest.mark.parametrize(
    ("args", "summary"),
    [(("status",), "status_report"), (("schedule", "show"), "schedule_report"),
     (("metrics", "report"), "metrics_report"),
     (("metrics", "report", "--period", "daily"), "metrics_report")],
    ids=" ".join,
)
def test_read_only_reports_on_a_fresh_install_report_nothing_yet_and_create_nothing(
    home: Path, args: tuple[str, ...], summary: str
) -> None:
    # The default embedded database, before any job ran: nothing to report is no failure,
    # and a report must not be the one that creates the database file (or its directory).
    from support import isolated_env

    cli = Cli(isolated_env(home))
    result = cli(*args)

    assert result.exit_code == 0, result.stdout
    report = result.one(summary)
    assert report["state"] == "ok" and report["exit_code"] == 0
    if summary == "metrics_report":
        assert report["total"] == 0 and report["series"][0]["total"] == 0
    if summary == "status_report":
        assert report["failure_rate"] is None and report["pending_log_rows"] == 0
        assert report["pending_files"] == 0 and report["history_since"] is None
    assert list(home.rglob("*")) == []


@pytest.mark.parametrize("args", [("status",), ("schedule", "show")], ids=" ".join)
def test_nagios_and_text_views_of_a_fresh_install_are_ok(home: Path,
                                                         args: tuple[str, ...]) -> None:
    from support import isolated_env

    cli = Cli(isolated_env(home))
    nagios = cli(*args, "--format", "nagios", output=None)
    assert nagios.exit_code == 0
    assert nagios.stdout.startswith(("OPSCTL STATUS OK - ", "OPSCTL SCHEDULE OK - "))
    assert cli(*args, output="text").exit_code == 0
    assert cli("metrics", "report", output="text").exit_code == 0
    assert list(home.rglob("*")) == []
