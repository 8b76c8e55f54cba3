"""Reports over ``opsctl_runs``: the latest runs, and per-job totals for ``runs stats``.

Every statistic is one query aggregated in the database, whatever the number of jobs or
runs, so ``runs stats`` stays well under a second over 100,000 recorded runs. All of them
filter on ``finished_at`` (a run enters history when it finishes), which the
``ix_opsctl_runs_job_finished`` and ``ix_opsctl_runs_finished`` indexes serve.

Reports are read-only and must answer on a fresh install: a missing table, or a SQLite
file that no job has created yet, is an empty history rather than an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
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
    last_success_at: datetime | None


@dataclass(frozen=True)
class _LastRun:
    finished_at: datetime
    state: str
    exit_code: int


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
        if self._sqlite_file_missing():
            return []
        with self.db.connect() as conn:
            if not self._has_history(conn):
                return []
            return [_record(row._mapping) for row in conn.execute(query)]

    def job_totals(
        self, since: datetime, success_exit_codes: frozenset[int]
    ) -> list[JobRunTotals]:
        succeeded = _c.exit_code.in_(sorted(success_exit_codes))
        in_window = _c.finished_at >= since
        if self._sqlite_file_missing():
            return []
        with self.db.connect() as conn:
            if not self._has_history(conn):
                return []
            aggregates = _aggregates(conn, in_window, succeeded)
            last_runs = _last_runs(conn, in_window)
            streaks = _failure_streaks(conn, in_window, succeeded)
            p95s = _p95s(conn, in_window, sqlite=self.db.is_sqlite)
        totals = []
        # Statements see separate snapshots; a run recorded between them shows up in a later
        # one only, so the first query decides which jobs are reported.
        for job, agg in sorted(aggregates.items()):
            last = last_runs.get(job)
            if last is None:
                continue
            totals.append(JobRunTotals(
                job=job,
                runs=agg.runs,
                failed=agg.failed,
                avg_duration_ms=agg.avg_duration_ms,
                p95_duration_ms=p95s.get(job),
                last_run_at=last.finished_at,
                last_state=last.state,
                last_exit_code=last.exit_code,
                last_success_at=agg.last_success_at,
                consecutive_failures=streaks.get(job, 0),
            ))
        return totals

    def _has_history(self, conn: Connection) -> bool:
        return inspect(conn).has_table(_runs.name)

    def _sqlite_file_missing(self) -> bool:
        # Opening it, even read-only, is an error; creating it would be a write.
        path = self.db.sqlite_path
        return path is not None and not path.exists()


def _record(row: Any) -> RunRecord:
    return RunRecord(
        job=row["job"], run_id=row["run_id"], host=row["host"],
        started_at=row["started_at"], finished_at=row["finished_at"], state=row["state"],
        exit_code=row["exit_code"], duration_ms=row["duration_ms"],
        summary=row["summary"] or {}, error=row["error"],
    )


def _aggregates(
    conn: Connection, in_window: ColumnElement[bool], succeeded: ColumnElement[bool]
) -> dict[str, _Aggregate]:
    failed = func.sum(case((succeeded, 0), else_=1))
    last_success = func.max(case((succeeded, _c.finished_at)))
    query = (
        select(_c.job, func.count(), failed, func.avg(_c.duration_ms), last_success)
        .where(in_window)
        .group_by(_c.job)
    )
    return {
        job: _Aggregate(int(runs), int(n_failed),
                        float(avg) if avg is not None else None, last_ok)
        for job, runs, n_failed, avg, last_ok in conn.execute(query)
    }


def _last_runs(conn: Connection, in_window: ColumnElement[bool]) -> dict[str, _LastRun]:
    rank = func.row_number().over(
        partition_by=_c.job, order_by=(_c.finished_at.desc(), _c.id.desc())
    ).label("rank")
    ranked = (
        select(_c.job, _c.finished_at, _c.state, _c.exit_code, rank).where(in_window).subquery()
    )
    query = select(ranked.c.job, ranked.c.finished_at, ranked.c.state,
                   ranked.c.exit_code).where(ranked.c.rank == 1)
    return {job: _LastRun(finished_at, state, exit_code)
            for job, finished_at, state, exit_code in conn.execute(query)}


def _failure_streaks(
    conn: Connection, in_window: ColumnElement[bool], succeeded: ColumnElement[bool]
) -> dict[str, int]:
    """Failed runs after each job's last success in the window (all of them if none).

    Every run after the last success is a failure by definition, so counting them is the
    streak; one grouped join instead of walking each job's runs backwards.
    """
    last_ok = (
        select(_c.job.label("job"), func.max(_c.finished_at).label("at"))
        .where(in_window, succeeded)
        .group_by(_c.job)
        .cte("last_ok")
    )
    query = (
        select(_c.job, func.count())
        .select_from(_runs.outerjoin(last_ok, last_ok.c.job == _c.job))
        .where(in_window, or_(last_ok.c.at.is_(None), _c.finished_at > last_ok.c.at))
        .group_by(_c.job)
    )
    return {job: int(count) for job, count in conn.execute(query)}


def _p95s(conn: Connection, in_window: ColumnElement[bool], *, sqlite: bool) -> dict[str, float]:
    if not sqlite:
        p95 = within_group(func.percentile_cont(P95), _c.duration_ms)
        query = select(_c.job, p95).where(in_window).group_by(_c.job)
        return {job: float(value) for job, value in conn.execute(query) if value is not None}
    # SQLite has no percentile_cont: stream each job's sorted durations through the same
    # interpolation. The per-job count comes from the same statement, so a run recorded
    # meanwhile cannot make the announced count disagree with the stream.
    per_job = func.count().over(partition_by=_c.job)
    query = (
        select(_c.job, _c.duration_ms, per_job)
        .where(in_window)
        .order_by(_c.job, _c.duration_ms)
    )
    return _stream_percentiles(conn.execute(query))


def _stream_percentiles(rows: Iterable[Any]) -> dict[str, float]:
    results: dict[str, float] = {}
    current: str | None = None
    picker: PercentilePicker | None = None
    for job, duration_ms, count in rows:
        if job != current:
            _store(results, current, picker)
            current, picker = job, PercentilePicker(int(count), (P95,))
        assert picker is not None
        picker.feed(float(duration_ms))
    _store(results, current, picker)
    return results


def _store(results: dict[str, float], job: str | None, picker: PercentilePicker | None) -> None:
    if job is not None and picker is not None:
        value = picker.result()[P95]
        if value is not None:
            results[job] = value
