"""Run history on real SQLite files and the real PostgreSQL: the report queries over
``opsctl_runs`` (DbRunHistory) and the pruning of old history (DbBookkeeping)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.run_history import DbRunHistory
from opsctl.adapters.db.runs import DbBookkeeping
from opsctl.domain.stats import percentile_cont
from opsctl.errors import DatabaseUnavailable
from opsctl.ports import RunRecord

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OK_CODES = frozenset({0, 1, 2})
_ids = itertools.count()


def run(job: str, finished_ago: timedelta, exit_code: int = 0, duration_ms: int = 1000,
        **overrides: Any) -> RunRecord:
    finished = NOW - finished_ago
    values: dict[str, Any] = {
        "job": job, "run_id": f"run-{next(_ids)}", "host": "cron-1",
        "started_at": finished - timedelta(milliseconds=duration_ms), "finished_at": finished,
        "state": {0: "ok", 1: "warning", 2: "alert"}.get(exit_code, "error"),
        "exit_code": exit_code, "duration_ms": duration_ms, "summary": {"n": 1},
        "error": None,
    }
    values.update(overrides)
    return RunRecord(**values)


def record(url: str, *runs: RunRecord, one_by_one: bool = False) -> None:
    """Schema first, as the job runner does; then one bulk insert, or the runner's own
    write path (``DbBookkeeping.record_run``, a transaction per run) when asked."""
    db = Database(url)
    try:
        migrations.ensure_schema(db)
        if one_by_one:
            for one in runs:
                DbBookkeeping(db).record_run(one)
        elif runs:
            with db.begin() as conn:
                conn.execute(tables.runs.insert(), [asdict(one) for one in runs])
    finally:
        db.dispose()


@contextmanager
def history(url: str) -> Iterator[DbRunHistory]:
    db = Database(url, read_only=True)
    try:
        yield DbRunHistory(db)
    finally:
        db.dispose()


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL a block sends (observed on the real engine, nothing replaced)."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- job_totals -----------------------------------------------------------------------------


def test_totals_per_job_with_exact_numbers(db_url: str) -> None:
    files = [  # oldest first: ok, error, ok, warning, then three failures in a row
        run("files.cleanup", minutes(70), 0, 100),
        run("files.cleanup", minutes(60), 3, 200),
        run("files.cleanup", minutes(50), 0, 300),
        run("files.cleanup", minutes(40), 1, 400),
        run("files.cleanup", minutes(30), 78, 500),
        run("files.cleanup", minutes(20), 3, 600),
        run("files.cleanup", minutes(10), 143, 700),
    ]
    record(
        db_url,
        *files,
        run("files.cleanup", timedelta(days=8), 0, 99_000),  # outside the 7-day window
        run("logs.cleanup", minutes(15), 3, 1000),
        run("logs.cleanup", minutes(5), 130, 3000),
        run("health.probe", minutes(1), 2, 42),
    )
    with history(db_url) as reader:
        totals = reader.job_totals(NOW - timedelta(days=7), OK_CODES)

    assert [t.job for t in totals] == ["files.cleanup", "health.probe", "logs.cleanup"]
    cleanup, probe, logs = totals
    assert (cleanup.runs, cleanup.failed, cleanup.consecutive_failures) == (7, 4, 3)
    assert cleanup.avg_duration_ms == pytest.approx(400.0)
    # percentile_cont(0.95) of 100..700 step 100: position 5.7 -> 600 + 0.7 * 100.
    assert cleanup.p95_duration_ms == pytest.approx(670.0)
    assert (cleanup.last_run_at, cleanup.last_state, cleanup.last_exit_code) == (
        NOW - minutes(10), "error", 143)
    assert cleanup.last_success_at == NOW - minutes(40)

    # Exit 2 is a job that ran and found something critical: a success of the job.
    assert (probe.runs, probe.failed, probe.consecutive_failures) == (1, 0, 0)
    assert (probe.last_state, probe.last_success_at, probe.p95_duration_ms) == (
        "alert", NOW - minutes(1), 42.0)

    # Never succeeded in the window: every run is part of the streak.
    assert (logs.runs, logs.failed, logs.consecutive_failures, logs.last_success_at) == (
        2, 2, 2, None)
    assert logs.p95_duration_ms == pytest.approx(2900.0)


def test_p95_agrees_with_postgres_percentile_cont_on_uneven_data(db_url: str) -> None:
    durations = [7, 1, 1000, 13, 250, 250, 3, 999_999, 42, 8, 61]
    record(db_url, *(run("metrics.aggregate", minutes(i + 1), 0, d)
                     for i, d in enumerate(durations)))
    with history(db_url) as reader:
        (totals,) = reader.job_totals(NOW - timedelta(days=1), OK_CODES)
    expected = percentile_cont(sorted(float(d) for d in durations), 0.95)
    assert expected == pytest.approx(500_499.5)
    assert totals.p95_duration_ms == pytest.approx(expected)


def test_the_caller_decides_which_exit_codes_succeed(db_url: str) -> None:
    record(db_url, run("failure-rate.check", minutes(3), 0),
           run("failure-rate.check", minutes(2), 2), run("failure-rate.check", minutes(1), 1))
    with history(db_url) as reader:
        (strict,) = reader.job_totals(NOW - timedelta(hours=1), frozenset({0}))
        (usual,) = reader.job_totals(NOW - timedelta(hours=1), OK_CODES)
    assert (strict.failed, strict.consecutive_failures, strict.last_success_at) == (
        2, 2, NOW - minutes(3))
    assert (usual.failed, usual.consecutive_failures, usual.last_success_at) == (
        0, 0, NOW - minutes(1))


def test_the_window_bounds_every_statistic(db_url: str) -> None:
    record(db_url, run("files.cleanup", minutes(120), 0), run("files.cleanup", minutes(30), 3),
           run("files.cleanup", minutes(20), 3), run("logs.cleanup", minutes(90), 3))
    with history(db_url) as reader:
        (totals,) = reader.job_totals(NOW - minutes(60), OK_CODES)
    assert (totals.job, totals.runs, totals.consecutive_failures, totals.last_success_at) == (
        "files.cleanup", 2, 2, None)


def test_the_number_of_queries_does_not_grow_with_jobs_or_runs(db_url: str) -> None:
    record(db_url, run("files.cleanup", minutes(1)))
    db = Database(db_url, read_only=True)
    try:
        with statements(db) as one_job:
            DbRunHistory(db).job_totals(NOW - timedelta(days=1), OK_CODES)
        record(db_url, *(run(job, minutes(i + 2), i % 4)
                         for job in ("health.probe", "logs.cleanup", "metrics.aggregate")
                         for i in range(30)))
        with statements(db) as four_jobs:
            totals = DbRunHistory(db).job_totals(NOW - timedelta(days=1), OK_CODES)
    finally:
        db.dispose()
    assert len(totals) == 4
    assert len(four_jobs) == len(one_job)
    # the grouped scan, the tails, the p95: one statement each, on top of the table check
    assert sum("FROM opsctl_runs" in s for s in four_jobs) == 3


def test_a_run_recorded_during_the_report_does_not_skew_it(db_url: str) -> None:
    """The statements share one snapshot: a run recorded right after the grouped scan is
    in none of them (on SQLite the p95 stream would otherwise outgrow its count)."""
    record(db_url, *(run("logs.cleanup", minutes(i + 1), 0, 100 * (i + 1)) for i in range(10)))
    db = Database(db_url, read_only=True)
    inserted: list[str] = []

    def insert_after_the_scan(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "GROUP BY" in statement and not inserted:
            inserted.append(statement)
            record(db_url, run("logs.cleanup", minutes(0.5), 3, 1))

    event.listen(db.engine, "after_cursor_execute", insert_after_the_scan)
    try:
        (totals,) = DbRunHistory(db).job_totals(NOW - timedelta(days=1), OK_CODES)
        (later,) = DbRunHistory(db).job_totals(NOW - timedelta(days=1), OK_CODES)
    finally:
        db.dispose()
    assert inserted
    assert (totals.runs, totals.failed, totals.consecutive_failures, totals.last_state) == (
        10, 0, 0, "ok")
    assert totals.p95_duration_ms == pytest.approx(955.0)  # 100..1000: 900 + 0.55 * 100
    assert (later.runs, later.consecutive_failures, later.last_state) == (11, 1, "error")


# --- recent_runs -----------------------------------------------------------------------------


def test_recent_runs_newest_first_with_every_field(db_url: str) -> None:
    failed = run("logs.cleanup", minutes(5), 3, 1500, host="cron-2", summary={},
                 error={"kind": "database_unavailable", "message": "refused"})
    record(db_url, run("files.cleanup", minutes(30)), failed, run("health.probe", minutes(10)),
           one_by_one=True)
    with history(db_url) as reader:
        runs = reader.recent_runs(job=None, since=None, limit=20)
    assert [r.job for r in runs] == ["logs.cleanup", "health.probe", "files.cleanup"]
    assert runs[0] == failed


def test_recent_runs_filters_by_job_since_and_limit(db_url: str) -> None:
    record(db_url, *(run("files.cleanup", minutes(10 * i)) for i in range(1, 6)),
           run("health.probe", minutes(1)))
    with history(db_url) as reader:
        assert [r.finished_at for r in reader.recent_runs(
            job="files.cleanup", since=NOW - minutes(35), limit=20)] == [
            NOW - minutes(10), NOW - minutes(20), NOW - minutes(30)]
        assert [r.finished_at for r in reader.recent_runs(job=None, since=None, limit=2)] == [
            NOW - minutes(1), NOW - minutes(10)]
        assert reader.recent_runs(job="logs.cleanup", since=None, limit=20) == []


# --- fresh installs and broken databases ------------------------------------------------------


def test_no_history_table_is_an_empty_history(db_url: str) -> None:
    db = Database(db_url)
    with db.begin() as conn:  # the database exists, opsctl never ran against it
        conn.execute(text("CREATE TABLE unrelated (id INTEGER)"))
    db.dispose()
    with history(db_url) as reader:
        assert reader.recent_runs(job=None, since=None, limit=5) == []
        assert reader.job_totals(NOW - timedelta(days=7), OK_CODES) == []


def test_a_missing_sqlite_file_is_an_empty_history_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "opsctl.db"
    with history(f"sqlite:///{path}") as reader:
        assert reader.job_totals(NOW, OK_CODES) == []
        assert reader.recent_runs(job=None, since=None, limit=1) == []
    assert not path.exists() and not path.parent.exists()


@pytest.mark.postgres
def test_an_unreachable_database_is_database_unavailable(pg_url: str) -> None:
    with history("postgresql+psycopg://postgres@127.0.0.1:1/none") as reader, \
            pytest.raises(DatabaseUnavailable):
        reader.job_totals(NOW, OK_CODES)


# --- pruning (DbBookkeeping.prune_runs, called by the runner after every job run) -------------


def test_prune_deletes_only_history_older_than_the_cutoff(db_url: str) -> None:
    cutoff = NOW - timedelta(days=90)
    record(db_url, run("files.cleanup", timedelta(days=200)),
           run("files.cleanup", timedelta(days=90, seconds=1)),
           run("files.cleanup", timedelta(days=90)),  # exactly at the cutoff: kept
           run("health.probe", timedelta(days=1)))
    db = Database(db_url)
    try:
        with statements(db) as sent:
            deleted = DbBookkeeping(db).prune_runs(cutoff)
        with db.connect() as conn:
            left = conn.execute(select(tables.runs.c.finished_at)
                                .order_by(tables.runs.c.finished_at)).scalars().all()
    finally:
        db.dispose()
    assert deleted == 2
    assert left == [cutoff, NOW - timedelta(days=1)]
    assert [s.split()[0].upper() for s in sent] == ["DELETE"]


def test_prune_is_one_indexed_range_delete(db_url: str) -> None:
    record(db_url, *(run("files.cleanup", timedelta(hours=i)) for i in range(200)))
    db = Database(db_url)
    try:
        with statements(db) as sent:
            DbBookkeeping(db).prune_runs(NOW)  # the statement the runner sends, captured
        (delete_sql,) = sent
        cutoff = NOW - timedelta(days=3)
        with db.begin() as conn:
            if db.is_sqlite:
                plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {delete_sql}", (cutoff.strftime("%Y-%m-%d %H:%M:%S"),)))
                assert "USING INDEX ix_opsctl_runs_finished" in plan or (
                    "USING COVERING INDEX ix_opsctl_runs_finished" in plan), plan
            else:
                # Whether a seq scan is cheaper on 200 rows is the planner's call; what is
                # checked is that the index can serve the delete, so it is no full scan at
                # 100,000 rows.
                conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = " ".join(row[0] for row in conn.exec_driver_sql(
                    f"EXPLAIN {delete_sql}", {"finished_at_1": cutoff}))
                assert "ix_opsctl_runs_finished" in plan, plan
                assert "Seq Scan" not in plan, plan
    finally:
        db.dispose()


def test_prune_on_an_empty_history_deletes_nothing(db_url: str) -> None:
    record(db_url)
    db = Database(db_url)
    try:
        assert DbBookkeeping(db).prune_runs(NOW) == 0
        with db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(tables.runs)).scalar() == 0
    finally:
        db.dispose()
