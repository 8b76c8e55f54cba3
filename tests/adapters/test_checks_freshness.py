"""The freshness check reading real ``opsctl_runs`` rows on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from opsctl.adapters.checks.freshness import FreshnessProbe
from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.ports import CheckFinding

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def with_runs(url: str, *runs: tuple[str, timedelta, int]) -> None:
    """(job, finished how long before NOW, exit code) per run."""
    db = Database(url)
    migrations.ensure_schema(db)
    with db.begin() as conn:
        for job, ago, code in runs:
            finished = NOW - ago
            conn.execute(tables.runs.insert().values(
                job=job, run_id=str(uuid.uuid4()), host="h", started_at=finished,
                finished_at=finished, state="ok" if code == 0 else "failed", exit_code=code,
                duration_ms=10, summary={}, error=None))
    db.dispose()


def fresh(url: str, job: str = "metrics.aggregate", max_age: timedelta = timedelta(hours=2)
          ) -> CheckFinding:
    return FreshnessProbe(url, 5, job, max_age, clock=lambda: NOW).check(5.0)


def test_a_recent_success_is_ok(db_url: str) -> None:
    with_runs(db_url, ("metrics.aggregate", timedelta(hours=3), 0),
              ("metrics.aggregate", timedelta(minutes=30), 0),
              ("metrics.aggregate", timedelta(minutes=5), 3))

    assert fresh(db_url) == CheckFinding(detail={
        "job": "metrics.aggregate", "last_success_at": "2026-11-23T11:30:00.000Z",
        "age_s": 1800, "max_age_s": 7200.0})


def test_a_run_that_warned_or_alerted_did_its_work_and_counts_as_a_success(
    db_url: str,
) -> None:
    with_runs(db_url, ("failure-rate.check", timedelta(hours=5), 0),
              ("failure-rate.check", timedelta(minutes=50), 1),
              ("failure-rate.check", timedelta(minutes=20), 2),
              ("failure-rate.check", timedelta(minutes=10), 3))

    finding = fresh(db_url, "failure-rate.check")

    assert finding.state == "ok"
    assert finding.detail["last_success_at"] == "2026-11-23T11:40:00.000Z"


def test_a_success_older_than_max_age_is_stale_even_with_recent_failures(db_url: str) -> None:
    with_runs(db_url, ("metrics.aggregate", timedelta(hours=3), 0),
              ("metrics.aggregate", timedelta(minutes=10), 78),
              ("metrics.aggregate", timedelta(minutes=5), 3),
              ("files.cleanup", timedelta(minutes=1), 0))

    finding = fresh(db_url)

    assert (finding.state, finding.error_kind) == ("critical", "stale")
    assert finding.error_message == "metrics.aggregate last succeeded 3h ago (max_age 2h)"
    assert finding.detail["age_s"] == 3 * 3600


def test_a_job_that_never_succeeded_is_critical(db_url: str) -> None:
    with_runs(db_url, ("metrics.aggregate", timedelta(minutes=5), 3),
              ("metrics.aggregate", timedelta(minutes=4), 143),
              ("files.cleanup", timedelta(minutes=1), 0))

    assert fresh(db_url) == CheckFinding(
        "critical", "never_run", "metrics.aggregate has no successful run in the history",
        {"job": "metrics.aggregate", "max_age_s": 7200.0})


def test_no_history_table_at_all_is_never_run_not_an_error(db_url: str) -> None:
    db = Database(db_url)
    with db.begin() as conn:  # an empty database: not even opsctl's tables
        conn.exec_driver_sql("CREATE TABLE unrelated (x integer)")
    db.dispose()

    assert fresh(db_url, "health.probe").error_kind == "never_run"
