"""Reports over ``opsctl_runs``: the latest runs, and per-job totals for ``runs stats``.

``runs stats`` must stay under a second over 100,000 recorded runs, so the window is read
in as few passes as possible, each one statement whatever the number of jobs:

1. one grouped scan: runs, failures, average duration, last run and last success per job;
2. the *tail* of each job, from its last success (or its last run) onwards, fetched
   through the ``(job, finished_at)`` index: it holds the last run's state and the failure
   streak, a handful of rows however long the history;
3. the p95: ``percentile_cont`` on PostgreSQL; on SQLite, which has none, the sorted
   durations streamed through the domain's ``PercentilePicker``.

The statements share one snapshot, so the per-job counts of (1) are exactly the lengths of
the streams of (3) even while jobs record runs.

Reports are read-only and must answer on a fresh install: a missing table, or a SQLite
file that no job has created yet, is an empty history rather than an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    func,
    inspect,
    or_,
    select,
    within_group,
)

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.domain.stats import PercentilePicker
from opsctl.ports import JobRunTotals, RunRecord

_runs = tables.runs
_c = _runs.c
P95 = 0.95


@dataclass(frozen=True)
class _Aggregate:
    runs: int
    failed: int
    avg_duration_ms: float | None
    last_run_at: datetime
    last_success_at: datetime | None


@dataclass(frozen=True)
class _Tail:
    state: str
    exit_code: int
    consecutive_failures: int


class DbRunHistory:
    """``RunHistory`` on the configured database (opened read-only by the CLI)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def recent_runs(
        self, *, job: str | None, since: datetime | None, limit: int
    ) -> list[RunRecord]:
        query = select(_runs).order_by(_c.finished_at.desc(), _c.id.desc()).limit(limit)
        if job is not None:
            query = query.where(_c.job == job)
        if since is not None:
            query = query.where(_c.finished_at >= since)
        with self._snapshot() as conn:
            if conn is None:
                return []
            return [_record(row._mapping) for row in conn.execute(query)]

    def job_totals(
        self, since: datetime, success_exit_codes: frozenset[int]
    ) -> list[JobRunTotals]:
        codes = sorted(success_exit_codes)
        with self._snapshot() as conn:
            if conn is None:
                return []
            aggregates = _aggregates(conn, since, codes)
            tails = _tails(conn, aggregates, codes)
            p95s = _p95s(conn, since, aggregates, sqlite=self.db.is_sqlite)
        return [
            JobRunTotals(
                job=job,
                runs=agg.runs,
                failed=agg.failed,
                avg_duration_ms=agg.avg_duration_ms,
                p95_duration_ms=p95s.get(job),
                last_run_at=agg.last_run_at,
                last_state=tails[job].state,
                last_exit_code=tails[job].exit_code,
                last_success_at=agg.last_success_at,
                consecutive_failures=tails[job].consecutive_failures,
            )
            for job, agg in sorted(aggregates.items())
        ]

    @contextmanager
    def _snapshot(self) -> Iterator[Connection | None]:
        """A connection whose statements all see one snapshot; None when there is no
        history to read (no SQLite file, no table)."""
        path = self.db.sqlite_path
        if path is not None and not path.exists():
            yield None  # opening it, even read-only, fails; creating it would be a write
            return
        with self.db.connect() as conn:
            if self.db.is_sqlite:
                # pysqlite opens no transaction for a SELECT, so each statement would read
                # its own snapshot; a deferred BEGIN holds one until the connection closes.
                conn.exec_driver_sql("BEGIN")
            else:
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn if inspect(conn).has_table(_runs.name) else None


def _record(row: Any) -> RunRecord:
    return RunRecord(
        job=row["job"], run_id=row["run_id"], host=row["host"],
        started_at=row["started_at"], finished_at=row["finished_at"], state=row["state"],
        exit_code=row["exit_code"], duration_ms=row["duration_ms"],
        summary=row["summary"] or {}, error=row["error"],
    )


def _aggregates(conn: Connection, since: datetime, codes: list[int]) -> dict[str, _Aggregate]:
    succeeded = _c.exit_code.in_(codes)
    query = (
        select(
            _c.job,
            func.count(),
            func.sum(case((succeeded, 0), else_=1)),
            func.avg(_c.duration_ms),
            func.max(_c.finished_at),
            func.max(case((succeeded, _c.finished_at))),
        )
        .where(_c.finished_at >= since)
        .group_by(_c.job)
    )
    return {
        job: _Aggregate(int(runs), int(failed), float(avg) if avg is not None else None,
                        last_run, last_ok)
        for job, runs, failed, avg, last_run, last_ok in conn.execute(query)
    }


def _tails(
    conn: Connection, aggregates: dict[str, _Aggregate], codes: list[int]
) -> dict[str, _Tail]:
    """Each job's runs from its last success (else its last run) on: one statement, one
    index range per job. Every run after the last success failed, by definition, so they
    are the streak; a job that never succeeded in the window failed every run."""
    if not aggregates:
        return {}
    ranges = [
        and_(_c.job == job, _c.finished_at >= (agg.last_success_at or agg.last_run_at))
        for job, agg in aggregates.items()
    ]
    # No ORDER BY: with one, SQLite scans the whole index instead of searching each range.
    query = select(_c.id, _c.job, _c.finished_at, _c.state, _c.exit_code).where(or_(*ranges))
    rows: dict[str, list[Any]] = {}
    for row in conn.execute(query):
        rows.setdefault(row.job, []).append(row)
    tails = {}
    for job, agg in aggregates.items():
        last = max(rows[job], key=lambda row: (row.finished_at, row.id))
        if agg.last_success_at is None:
            streak = agg.runs
        else:
            streak = sum(1 for row in rows[job] if row.finished_at > agg.last_success_at)
        tails[job] = _Tail(last.state, last.exit_code, streak)
    return tails


def _p95s(
    conn: Connection, since: datetime, aggregates: dict[str, _Aggregate], *, sqlite: bool
) -> dict[str, float]:
    if not sqlite:
        p95 = within_group(func.percentile_cont(P95), _c.duration_ms)
        query = select(_c.job, p95).where(_c.finished_at >= since).group_by(_c.job)
        return {job: float(value) for job, value in conn.execute(query) if value is not None}
    query = (
        select(_c.job, _c.duration_ms)
        .where(_c.finished_at >= since)
        .order_by(_c.job, _c.duration_ms)
    )
    counts = {job: agg.runs for job, agg in aggregates.items()}
    return _stream_percentiles(conn.execute(query), counts)


def _stream_percentiles(rows: Iterable[Any], counts: dict[str, int]) -> dict[str, float]:
    results: dict[str, float] = {}
    current: str | None = None
    picker = PercentilePicker(0, (P95,))
    for job, duration_ms in rows:
        if job != current:
            _store(results, current, picker)
            current, picker = job, PercentilePicker(counts[job], (P95,))
        picker.feed(float(duration_ms))
    _store(results, current, picker)
    return results


def _store(results: dict[str, float], job: str | None, picker: PercentilePicker) -> None:
    if job is not None:
        value = picker.result()[P95]
        if value is not None:
            results[job] = value
