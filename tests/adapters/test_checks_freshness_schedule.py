"""``freshness`` with ``max_age = "schedule"``: critical exactly when the job is overdue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from opsctl.adapters.checks.freshness import ScheduleProbe
from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.locks import job_lock
from opsctl.ports import CheckFinding

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def prepare(url: str, created: datetime, *starts: tuple[datetime, int]) -> None:
    db = Database(url)
    migrations.ensure_schema(db)
    with db.begin() as conn:
        conn.execute(tables.schema_version.update().where(tables.schema_version.c.version == 1)
                     .values(applied_at=created))
        for started, code in starts:
            conn.execute(tables.runs.insert().values(
                job="metrics.aggregate", run_id=str(uuid.uuid4()), host="h",
                started_at=started, finished_at=started + timedelta(seconds=5),
                state="ok" if code < 3 else "error", exit_code=code, duration_ms=5000,
                summary={}, error=None))
    db.dispose()


def probe(url: str, now: datetime = NOW) -> CheckFinding:
    return ScheduleProbe(url, 5, "metrics.aggregate", "0 * * * *", GRACE,
                         clock=lambda: now).check(5.0)


def test_ok_when_the_last_fire_was_served(db_url: str) -> None:
    prepare(db_url, NOW - timedelta(days=1), (NOW.replace(minute=0, second=2), 0))

    finding = probe(db_url)

    assert finding.state == "ok"
    assert finding.detail["due_at"] == "2026-11-23T12:00:00.000Z"
    assert finding.detail["overdue"] is False


def test_critical_when_the_last_fire_was_missed_even_with_a_failed_run(db_url: str) -> None:
    prepare(db_url, NOW - timedelta(days=1), (NOW - timedelta(hours=1, minutes=30), 0),
            (NOW.replace(minute=0, second=1), 3))

    finding = probe(db_url)

    assert (finding.state, finding.error_kind) == ("critical", "overdue")
    assert (finding.error_message or "").startswith("metrics.aggregate is overdue: no successful run since "
                                      "its 2026-11-23T12:00:00.000Z start")


def test_never_succeeded_waits_for_two_fires_since_the_tables_were_created(
    db_url: str,
) -> None:
    prepare(db_url, NOW - timedelta(minutes=70))  # created 11:20: fires 12:00 only

    assert probe(db_url).state == "ok"
    assert probe(db_url, NOW + timedelta(hours=1)).state == "critical"


def test_a_running_job_is_not_overdue(db_url: str) -> None:
    prepare(db_url, NOW - timedelta(days=1), (NOW - timedelta(hours=5), 0))
    db = Database(db_url)
    try:
        with job_lock(db, "metrics.aggregate"):
            finding = probe(db_url)
    finally:
        db.dispose()

    assert finding.state == "ok" and finding.detail["running"] is True
