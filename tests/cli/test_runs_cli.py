"""``opsctl runs list|stats`` through the real entry point, on SQLite and PostgreSQL, plus
the pruning of run history by a real job run."""

from __future__ import annotations

import itertools
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import Cli, CliResult, isolated_env

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.events import COMMON_FIELDS
from opsctl.ports import RunRecord

_ids = itertools.count()


@pytest.fixture(autouse=True)
def _now_is_when_the_test_runs() -> None:
    # Not when the module was collected: a long suite on a busy machine would age every
    # crafted run by the minutes the tests before it took.
    global NOW
    NOW = datetime.now(UTC)


def run(job: str, finished_ago: timedelta, exit_code: int = 0, duration_ms: int = 1000,
        **overrides: Any) -> RunRecord:
    # The CLI reads the real clock, so a crafted run is "minutes old" from when the test
    # runs, not from when the module was collected (a long suite would drift past windows).
    finished = datetime.now(UTC) - finished_ago
    values: dict[str, Any] = {
        "job": job, "run_id": f"cli-run-{next(_ids)}", "host": "cron-1",
        "started_at": finished - timedelta(milliseconds=duration_ms), "finished_at": finished,
        "state": {0: "ok", 1: "warning", 2: "alert"}.get(exit_code, "error"),
        "exit_code": exit_code, "duration_ms": duration_ms,
        "summary": {"deleted_count": 4, "state": "ok", "exit_code": 0}, "error": None,
    }
    values.update(overrides)
    return RunRecord(**values)


def record(url: str, *runs: RunRecord) -> None:
    db = Database(url)
    try:
        migrations.ensure_schema(db)
        if runs:
            with db.begin() as conn:
                conn.execute(tables.runs.insert(), [asdict(one) for one in runs])
    finally:
        db.dispose()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def own_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in COMMON_FIELDS}


def assert_event_stream(result: CliResult, summary_type: str) -> None:
    """Common fields everywhere, no ``status``, one final line with state and exit code."""
    for event in result.events:
        assert set(COMMON_FIELDS) <= set(event), event
        assert "status" not in event
        assert event["run_id"] == result.events[0]["run_id"]
    assert [e["type"] for e in result.events if "exit_code" in e] == [summary_type]
    assert result.events[-1]["type"] == summary_type
    assert result.events[-1]["exit_code"] == result.exit_code


def cleanup_streak() -> list[RunRecord]:
    """files.cleanup: ok, ok, then three failures in a row (the streak rule)."""
    return [run("files.cleanup", minutes(50), 0, 1000), run("files.cleanup", minutes(40), 0, 2000),
            run("files.cleanup", minutes(30), 3, 3000), run("files.cleanup", minutes(20), 78, 4000),
            run("files.cleanup", minutes(10), 3, 5000)]


# --- runs stats ------------------------------------------------------------------------------


def test_stats_exits_2_when_a_job_is_in_alert(cli: Cli, db_url: str) -> None:
    record(db_url, *cleanup_streak(), run("health.probe", minutes(5), 0, 50))
    result = cli("runs", "stats")

    assert result.exit_code == 2
    assert_event_stream(result, "job_run_stats_summary")
    cleanup = result.events[0]
    assert (cleanup["type"], cleanup["job"], cleanup["level"]) == (
        "job_run_stats", "files.cleanup", "error")
    assert own_fields(cleanup) == {
        "runs": 5, "succeeded": 2, "failed": 3, "success_rate": 0.4,
        "avg_duration_ms": 3000.0, "p95_duration_ms": 4800.0,
        "last_run_at": cleanup["last_run_at"], "last_state": "error", "last_exit_code": 3,
        "last_success_at": cleanup["last_success_at"], "consecutive_failures": 3,
        "state": "alert", "reasons": ["failure_rate", "consecutive_failures"],
    }
    assert cleanup["last_run_at"].endswith("Z") and cleanup["last_success_at"].endswith("Z")
    probe = result.events[1]
    assert (probe["job"], probe["state"], probe["reasons"], probe["runs"]) == (
        "health.probe", "ok", [], 1)
    summary = result.events[-1]
    assert own_fields(summary) | {"window_start": None, "window_end": None} == {
        "window": "7d", "window_start": None, "window_end": None, "jobs": 2,
        "jobs_in_alert": 1, "alert_jobs": ["files.cleanup"], "alert_failure_rate": 0.5,
        "alert_min_runs": 5, "alert_consecutive_failures": 3,
        "alert_max_avg_duration_ms": 300_000.0, "state": "alert", "exit_code": 2,
    }
    assert summary["job"] is None and summary["level"] == "error"


def test_stats_exits_0_when_exactly_half_failed(cli: Cli, db_url: str) -> None:
    # ok, fail, ok, fail ... : 50 % is not "more than" 50 % and no streak reaches 3.
    record(db_url, *(run("logs.cleanup", minutes(60 - i), 3 if i % 2 else 0) for i in range(10)))
    result = cli("runs", "stats")
    assert result.exit_code == 0
    assert_event_stream(result, "job_run_stats_summary")
    (job, summary) = result.events
    assert (job["failed"], job["runs"], job["consecutive_failures"], job["state"]) == (
        5, 10, 1, "ok")
    assert (summary["state"], summary["jobs_in_alert"]) == ("ok", 0)


def test_stats_window_flag_leaves_older_failures_out(cli: Cli, db_url: str) -> None:
    record(db_url, run("files.cleanup", minutes(60), 0), run("files.cleanup", minutes(30), 3),
           run("files.cleanup", minutes(20), 3), run("files.cleanup", minutes(10), 3))
    assert cli("runs", "stats").exit_code == 2  # three failures in a row over 7 days
    narrow = cli("runs", "stats", "--window", "15m")
    assert narrow.exit_code == 0
    (job, summary) = narrow.events
    assert (job["runs"], job["failed"], job["consecutive_failures"], summary["window"]) == (
        1, 1, 1, "15m")


def test_stats_default_7d_includes_last_weeks_failures(cli: Cli, db_url: str) -> None:
    record(db_url, run("files.cleanup", timedelta(days=6, hours=23), 3),
           run("files.cleanup", timedelta(days=6, hours=22), 3),
           run("files.cleanup", timedelta(days=6, hours=21), 3),
           run("files.cleanup", timedelta(days=8), 0))
    result = cli("runs", "stats")
    assert (result.exit_code, result.events[0]["runs"], result.events[0]["last_success_at"]) == (
        2, 3, None)


@pytest.mark.parametrize(
    ("settings", "exit_code", "reasons"),
    [
        ({"ALERT_CONSECUTIVE_FAILURES": "2"}, 2, ["consecutive_failures"]),
        ({"ALERT_MAX_AVG_DURATION": "2s"}, 2, ["avg_duration"]),
        ({"ALERT_MIN_RUNS": "4"}, 2, ["failure_rate"]),
        ({"ALERT_MIN_RUNS": "4", "ALERT_FAILURE_RATE": "0.75"}, 0, []),  # 75 % is not > 75 %
        ({"ALERT_MIN_RUNS": "2", "WINDOW": "25m"}, 2, ["failure_rate"]),
        ({"ALERT_MIN_RUNS": "2", "WINDOW": "15m"}, 0, []),  # one run left: below min_runs
    ],
)
def test_stats_thresholds_come_from_the_runs_section(
    cli: Cli, db_url: str, settings: dict[str, str], exit_code: int, reasons: list[str]
) -> None:
    # fail, ok, fail, fail: 75 % of 4 runs, a 2-run streak, 2.5 s on average. Fine under
    # the defaults (too few runs for the rate, streak below 3, far below 5 minutes).
    record(db_url, run("metrics.aggregate", minutes(40), 3, 1000),
           run("metrics.aggregate", minutes(30), 0, 2000),
           run("metrics.aggregate", minutes(20), 3, 3000),
           run("metrics.aggregate", minutes(10), 3, 4000))
    assert cli("runs", "stats").exit_code == 0
    result = cli("runs", "stats", env={f"OPSCTL_RUNS__{k}": v for k, v in settings.items()})
    assert (result.exit_code, result.events[0]["reasons"]) == (exit_code, reasons)


def test_stats_on_a_database_opsctl_never_used_is_ok_with_no_jobs(cli: Cli) -> None:
    result = cli("runs", "stats")
    assert result.exit_code == 0
    (summary,) = result.events
    assert (summary["type"], summary["jobs"], summary["state"]) == (
        "job_run_stats_summary", 0, "ok")
    assert summary["message"] == "no runs recorded in the last 7d"


def test_runs_reports_do_not_create_the_sqlite_database(home: Path, sqlite_url: str) -> None:
    cli = Cli(isolated_env(home, sqlite_url))
    assert cli("runs", "list").exit_code == 0
    assert cli("runs", "stats").exit_code == 0
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_stats_text_view_shows_one_row_per_job_and_the_reasons(cli: Cli, db_url: str) -> None:
    record(db_url, *cleanup_streak(), run("health.probe", minutes(5), 0, 50))
    result = cli("runs", "stats", output="text", env={"COLUMNS": "160"})
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    (cleanup,) = [line for line in lines if line.startswith("files.cleanup ")]
    assert cleanup.split()[:6] == ["files.cleanup", "alert", "5", "40", "%", "3.0"]
    (probe,) = [line for line in lines if line.startswith("health.probe ")]
    assert probe.split()[:3] == ["health.probe", "ok", "1"]
    assert "alert files.cleanup: last 3 runs failed (>= 3 in a row)" in lines
    assert "alert files.cleanup: 60.0 % of 5 runs failed (> 50.0 %)" in lines
    assert "{" not in result.stdout  # no JSON in text mode


# --- runs list -------------------------------------------------------------------------------


def test_list_newest_first_with_one_event_per_run(cli: Cli, db_url: str) -> None:
    failed = run("logs.cleanup", minutes(5), 3, 2500, summary={},
                 error={"kind": "archive_unavailable", "message": "bucket gone"})
    record(db_url, run("files.cleanup", minutes(30), 1), failed, run("health.probe", minutes(10)))
    result = cli("runs", "list")

    assert result.exit_code == 0
    assert_event_stream(result, "job_runs_listed")
    assert [(e["type"], e["job"]) for e in result.events[:-1]] == [
        ("job_run", "logs.cleanup"), ("job_run", "health.probe"), ("job_run", "files.cleanup")]
    assert own_fields(result.events[0]) == {
        "job_run_id": failed.run_id, "job_host": "cron-1",
        "started_at": result.events[0]["started_at"],
        "finished_at": result.events[0]["finished_at"], "duration_ms": 2500,
        "state": "error", "job_exit_code": 3, "summary": "archive_unavailable: bucket gone",
        "error": {"kind": "archive_unavailable", "message": "bucket gone"},
    }
    assert result.events[2]["summary"] == "deleted_count=4"
    assert own_fields(result.events[-1]) == {
        "count": 3, "limit": 20, "job_filter": None, "since": None, "state": "ok",
        "exit_code": 0}


def test_list_filters_by_job_since_and_limit(cli: Cli, db_url: str) -> None:
    record(db_url, *(run("files.cleanup", minutes(10 * i)) for i in range(1, 8)),
           run("health.probe", minutes(1)), run("health.probe", minutes(400)))
    by_job = cli("runs", "list", "--job", "health.probe")
    assert [e["job"] for e in by_job.events[:-1]] == ["health.probe", "health.probe"]
    recent = cli("runs", "list", "--since", "35m")
    assert len(recent.events) - 1 == recent.events[-1]["count"] == 4
    assert recent.events[-1]["since"].endswith("Z")
    both = cli("runs", "list", "--job", "files.cleanup", "--since", "1h", "--limit", "2")
    assert [e["duration_ms"] for e in both.events[:-1]] == [1000, 1000]
    assert {k: both.events[-1][k] for k in ("count", "limit", "job_filter")} == {
        "count": 2, "limit": 2, "job_filter": "files.cleanup"}
    assert [e["finished_at"] for e in both.events[:-1]] == sorted(
        (e["finished_at"] for e in both.events[:-1]), reverse=True)


def test_list_limit_defaults_to_20(cli: Cli, db_url: str) -> None:
    record(db_url, *(run("health.probe", minutes(i + 1)) for i in range(25)))
    result = cli("runs", "list")
    assert result.events[-1]["count"] == 20 and len(result.events) == 21


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["runs", "list", "--job", "files_cleanup"], "metrics.aggregate, failure-rate.check"),
        (["runs", "list", "--limit", "0"], "--limit"),
        (["runs", "list", "--since", "yesterday"], "--since"),
        (["runs", "stats", "--window", "7"], "--window"),
        (["runs", "stats", "--window", "0s"], "--window"),
    ],
)
def test_bad_values_are_usage_errors(cli: Cli, args: list[str], mentions: str) -> None:
    result = cli(*args)
    assert result.exit_code == 64
    (error,) = result.events
    assert (error["type"], error["error"]["kind"], error["exit_code"]) == ("error", "usage", 64)
    assert mentions in error["error"]["message"]


def test_list_text_view(cli: Cli, db_url: str) -> None:
    record(db_url, run("files.cleanup", minutes(3), 3, 1234, summary={},
                       error={"kind": "storage_unavailable", "message": "disk [gone]"}))
    result = cli("runs", "list", output="text", env={"COLUMNS": "160"})
    assert result.exit_code == 0
    (row,) = [line for line in result.stdout.splitlines() if "files.cleanup" in line]
    assert row.split()[2:] == ["files.cleanup", "error", "1.2", "s", "3", "storage_unavailable:",
                               "disk", "[gone]"]


@pytest.mark.postgres
def test_unreachable_database_exits_3_without_the_password(home: Path) -> None:
    cli = Cli(isolated_env(home, "postgresql+psycopg://opsctl:s3cret-pw@127.0.0.1:1/app"))
    for args in (["runs", "list"], ["runs", "stats"]):
        result = cli(*args)
        assert result.exit_code == 3
        (error,) = result.events
        assert (error["type"], error["error"]["kind"]) == ("error", "database_unavailable")
        assert "s3cret-pw" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


# --- reports are not runs; real runs prune history ---------------------------------------------


def test_reports_are_not_recorded_but_a_job_run_is_and_prunes_old_history(
    cli: Cli, db_url: str
) -> None:
    record(db_url, run("files.cleanup", timedelta(days=100)),
           run("files.cleanup", timedelta(days=20)), run("files.cleanup", timedelta(days=1)))
    cli("runs", "stats")
    cli("runs", "list")
    assert cli("runs", "list").events[-1]["count"] == 3  # the reports left no trace

    probe = cli("health", "probe")  # a real job: runner records it, then prunes (90 days)
    assert probe.exit_code == 0
    listed = cli("runs", "list", "--since", "1000d")
    newest = listed.events[0]
    assert (newest["job"], newest["job_run_id"], newest["state"]) == (
        "health.probe", probe.events[-1]["run_id"], "healthy")
    assert [e["job"] for e in listed.events[:-1]] == [
        "health.probe", "files.cleanup", "files.cleanup"]  # the 100-day-old run is gone

    cli("health", "probe", env={"OPSCTL_RUNS__RETENTION_DAYS": "10"})
    kept = cli("runs", "list", "--since", "1000d")
    assert [e["job"] for e in kept.events[:-1]] == [
        "health.probe", "health.probe", "files.cleanup"]  # [runs] retention_days honoured
