"""What ``schedule show`` and ``status`` read, on one read-only connection.

The on-call screen must answer in a blink on a busy database, so every number is one
indexed statement, all on one connection and one snapshot:

1. opsctl's tables (one catalog query) and the creation time of the schema;
2. per job, one ``UNION ALL`` statement: the last run and the last success (each the top of
   the ``(job, finished_at)`` index, walked backwards), and the latest start among
   successes finished since the job's due time (a short range of that same index);
3. the last failed runs (a backward walk of the ``finished_at`` index);
4. which job locks are held (``pg_locks``; on SQLite a probe of each lock file);
5. open alerts; 6. the source table's last hour and pending cleanups, one statement of
   scalar subqueries on the ``created_at`` and ``expires_at`` indexes.

A database without opsctl's tables is an empty history, not an error: these are reports,
and a fresh install has nothing to report yet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    func,
    inspect,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.sql import Select

from opsctl.adapters.db import locks, tables
from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.tables import source_table
from opsctl.ports import (
    FailedRun,
    HistorySnapshot,
    JobHistory,
    OpenAlert,
    PendingWork,
    RunBrief,
)
from opsctl.settings.data import SourceSettings

_runs = tables.runs
_c = _runs.c
EXPIRED, COMPLETED, FAILED = "expired", "completed", "failed"


class DbJobStatus:
    """``StatusSource`` on the configured database; open it read-only and close it after."""

    def __init__(self, db: Database, source: SourceSettings | None = None,
                 lock_dir: Path | None = None) -> None:
        self.db = db
        self.source = source
        self.lock_dir = lock_dir
        self._conn: Connection | None = None
        self._tables: set[str] | None = None

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with translate_errors(self.db):
                conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection | None]:
        """The run's one connection, in one snapshot; None when there is no database file."""
        if self.db.not_created:
            yield None
            return
        with translate_errors(self.db):
            if self._conn is None:
                conn = self.db.engine.connect()
                if self.db.is_sqlite:
                    conn.exec_driver_sql("BEGIN")  # one snapshot until the connection closes
                else:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                self._conn = conn
            yield self._conn

    def _has(self, conn: Connection, name: str) -> bool:
        if self._tables is None:
            self._tables = set(inspect(conn).get_table_names())
        return name in self._tables

    # --- history ---------------------------------------------------------------------------

    def snapshot(
        self,
        jobs: Sequence[str],
        success_codes: frozenset[int],
        success_since: Mapping[str, datetime],
        *,
        failed_runs: int = 0,
    ) -> HistorySnapshot:
        with self._connection() as conn:
            if conn is None or not self._has(conn, _runs.name):
                return HistorySnapshot(None, {job: JobHistory(job) for job in jobs})
            with translate_errors(self.db):
                created = self._created_at(conn)
                rows = _latest(conn, jobs, sorted(success_codes), success_since)
                running = self._running(conn, jobs)
                failed = _failed(conn, sorted(success_codes), failed_runs)
        histories = {}
        for job in jobs:
            found = rows.get(job, {})
            since = found.get("since")
            histories[job] = JobHistory(
                job, last_run=found.get("last"), last_success=found.get("ok"),
                success_started_since=since.started_at if since else None,
                running=job in running)
        return HistorySnapshot(created, histories, failed)

    def _created_at(self, conn: Connection) -> datetime | None:
        if not self._has(conn, tables.schema_version.name):
            return None
        t = tables.schema_version
        created: datetime | None = conn.execute(
            select(t.c.applied_at).where(t.c.version == 1)).scalar_one_or_none()
        return created

    def _running(self, conn: Connection, jobs: Sequence[str]) -> set[str]:
        if self.db.is_sqlite:
            found = set()
            for job in jobs:
                path = locks.lock_file(self.db, job, self.lock_dir)
                if path is not None and locks.file_lock_held(path):
                    found.add(job)
            return found
        ids = {locks.advisory_lock_ids(job): job for job in jobs}
        held = conn.execute(text(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND objsubid = 1 AND granted AND database = (SELECT oid FROM pg_database"
            " WHERE datname = current_database())"))
        return {ids[(int(c), int(o))] for c, o in held if (int(c), int(o)) in ids}

    # --- alerts and the source table -------------------------------------------------------

    def open_alerts(self) -> list[OpenAlert]:
        t = tables.alert_state
        with self._connection() as conn:
            if conn is None or not self._has(conn, t.name):
                return []
            with translate_errors(self.db):
                rows = conn.execute(select(t).where(t.c.state == "open").order_by(t.c.name))
                return [OpenAlert(r.name, r.opened_at, r.last_notified_at, dict(r.details or {}))
                        for r in rows]

    def pending(self, since: datetime, now: datetime, log_cutoff: datetime) -> PendingWork:
        assert self.source is not None, "pending() needs the [source] settings"
        t = source_table(self.source.table, self.source.columns.model_dump())
        c = t.c

        def count(*where: Any) -> Any:
            return select(func.count()).select_from(t).where(*where).scalar_subquery()

        last_hour = (c.created_at >= since, c.created_at < now)
        query = select(
            count(*last_hour, c.status == COMPLETED),
            count(*last_hour, c.status == FAILED),
            count(c.created_at < log_cutoff),
            # files cleanup's candidates, the same predicate as the job's
            count(c.expires_at < now, c.status != EXPIRED, c.file_path.is_not(None),
                  c.file_path != ""),
        )
        with self._connection() as conn:
            if conn is None:
                return PendingWork(0, 0, 0, 0)  # no database yet: nothing exported, nothing due
            with translate_errors(self.db):
                completed, failed, rows, files = conn.execute(query).one()
        return PendingWork(int(completed), int(failed), int(rows), int(files))


def _brief(row: Any) -> RunBrief:
    return RunBrief(row.started_at, row.finished_at, row.state, int(row.exit_code), row.error)


def _latest(
    conn: Connection, jobs: Sequence[str], codes: list[int], since: Mapping[str, datetime]
) -> dict[str, dict[str, RunBrief]]:
    """One statement: per job, its last run, its last success, and its latest successful
    start since ``since[job]``; each part a short walk of ``(job, finished_at)``."""
    cols = (_c.started_at, _c.finished_at, _c.state, _c.exit_code, _c.error)
    parts: list[Select[Any]] = []
    for job in jobs:
        newest = (select(literal("last").label("kind"), literal(job).label("job"), *cols)
                  .where(_c.job == job).order_by(_c.finished_at.desc()).limit(1))
        success = (select(literal("ok").label("kind"), literal(job).label("job"), *cols)
                   .where(_c.job == job, _c.exit_code.in_(codes))
                   .order_by(_c.finished_at.desc()).limit(1))
        parts += [select(newest.subquery()), select(success.subquery())]
        if job in since:
            started = (select(literal("since").label("kind"), literal(job).label("job"),
                              func.max(_c.started_at).label("started_at"),
                              func.max(_c.finished_at).label("finished_at"),
                              literal("").label("state"), literal(0).label("exit_code"),
                              literal(None, _c.error.type).label("error"))
                       .where(and_(_c.job == job, _c.exit_code.in_(codes),
                                   _c.finished_at >= since[job])))
            parts.append(select(started.subquery()))
    found: dict[str, dict[str, RunBrief]] = {}
    if not parts:
        return found
    for row in conn.execute(union_all(*parts)):
        if row.started_at is not None:
            found.setdefault(row.job, {})[row.kind] = _brief(row)
    return found


def _failed(conn: Connection, codes: list[int], limit: int) -> list[FailedRun]:
    if limit <= 0:
        return []
    query = (select(_c.job, _c.started_at, _c.finished_at, _c.state, _c.exit_code, _c.error)
             .where(_c.exit_code.not_in(codes))
             .order_by(_c.finished_at.desc(), _c.id.desc()).limit(limit))
    return [FailedRun(row.job, _brief(row)) for row in conn.execute(query)]
