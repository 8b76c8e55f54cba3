"""``OldLogsRepository``: stats, batch walks and archived deletes on the source table
(the backend-specific deletes live in ``sqlite`` and ``postgres``)."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, exists, func, inspect, select

from opsctl.adapters.db import tables
from opsctl.adapters.db.archive_catalog import catalogue
from opsctl.adapters.db.database import Database, RunConnection
from opsctl.adapters.db.instants import not_comparable, older_than
from opsctl.adapters.db.log_lines import BatchReader, full_table
from opsctl.adapters.db.old_logs import postgres, sqlite
from opsctl.adapters.db.old_logs.held import HeldDeletes
from opsctl.adapters.db.old_logs.statements import (
    FIRST,
    IDS_PER_STATEMENT,
    BatchStatements,
    OwnConnection,
)
from opsctl.adapters.db.read_ahead import batch_ranges, read_ahead
from opsctl.adapters.db.sqlite_lines import SqliteLines
from opsctl.adapters.db.tables import source_table
from opsctl.ports import CatalogRecord, LogBatch, LogTableStats, PoisonRow, Settlement

# Tables the planner's statistics put above this many rows are not counted exactly.
ESTIMATED_ABOVE = 1_000_000

if TYPE_CHECKING:
    from opsctl.settings.data import SourceSettings

# Poison rows reported by one run at most (their count is always exact).
_POISON_REPORTED = 100


class _RangeChanged(Exception):
    """Rolls back a batch delete whose rows are not the ones that were archived."""


class OldLogsRepository:
    """``LogStatsSource`` and ``OldLogs`` on the configured table (columns remapped)."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())
        self._run = RunConnection(db)
        self._statements = BatchStatements(self.table, db.is_sqlite)
        self._full: Table | None = None
        self._lines: SqliteLines | None = None
        self._delete_archived: str | None = None
        # The eligible rows and the highest eligible id found by the survey of the run's
        # start (SQLite: the poison survey; PostgreSQL: the count), with its cutoff, each
        # used once by the count and the bound that follow it.
        self._known_eligible: tuple[datetime, int] | None = None
        self._known_upper: tuple[datetime, int | None] | None = None

    def close(self) -> None:
        self._run.close()

    # --- stats ---------------------------------------------------------------------------

    def stats(self, cutoff: datetime) -> LogTableStats:
        c = self.table.c
        on_sqlite = self.db.is_sqlite

        def scalar(*columns: Any, where: Any = None) -> Any:
            query = select(*columns).select_from(self.table)
            return (query if where is None else query.where(where)).scalar_subquery()

        def bound(order: Any) -> Any:
            if not on_sqlite:
                return scalar(func.min(c.created_at) if order is None else func.max(
                    c.created_at))
            # The first and last timestamps in index order, past any poison value.
            ordered = c.created_at.asc() if order is None else c.created_at.desc()
            return (select(c.created_at).where(~not_comparable(c.created_at))
                    .order_by(ordered).limit(1).scalar_subquery())

        query = select(
            scalar(func.count()),
            scalar(func.count(), where=older_than(c.created_at, cutoff, sqlite=on_sqlite)),
            bound(None),
            bound("desc"),
        )
        with self._run.transaction() as conn:
            total, eligible, oldest, newest = conn.execute(query).one()
            poison = self._poison(conn, None) if on_sqlite else []
        return LogTableStats(int(total), int(eligible), oldest, newest, poison)

    def poison_rows(self, cutoff: datetime) -> Sequence[PoisonRow]:
        if not self.db.is_sqlite:
            return []  # timestamptz: every value is an instant
        with self._run.transaction() as conn:
            eligible, upper, poisoned = sqlite.survey(conn, self.table, cutoff)
            self._known_eligible, self._known_upper = (cutoff, eligible), (cutoff, upper)
            return self._poison(conn, cutoff) if poisoned else []

    def _poison(self, conn: Connection, cutoff: datetime | None) -> list[PoisonRow]:
        """Rows whose ``created_at`` is no timestamp; with a cutoff, only those that sort
        before it (the ones a plain comparison would have deleted)."""
        c = self.table.c
        condition = not_comparable(c.created_at)
        if cutoff is not None:
            condition = condition & (c.created_at < cutoff)
        query = (select(c.id, func.quote(c.created_at), func.typeof(c.created_at))
                 .where(condition).order_by(c.id).limit(_POISON_REPORTED))
        return [PoisonRow(row_id, str(value)[:200],
                          f"created_at is {kind}, not a timestamp" if kind != "text"
                          else "created_at is text that is not a timestamp")
                for row_id, value, kind in conn.execute(query)]

    # --- cleanup -------------------------------------------------------------------------

    def count_rows(self) -> int:
        """Every row of the table (the deletion guard's fraction), asked only above the
        guard's minimum. On PostgreSQL, once the planner's statistics put the table above
        ``ESTIMATED_ABOVE`` rows, their figure is the answer: the guard weighs a share of
        the table (0.9 by default), which a fresh estimate gives to a percent or two, and
        an exact count of ten million rows costs a second of every run."""
        with self._run.transaction() as conn:
            if not self.db.is_sqlite:
                estimate = postgres.estimated_rows(conn, self.table)
                if estimate is not None and estimate >= ESTIMATED_ABOVE:
                    return estimate
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def count_eligible(self, cutoff: datetime) -> int:
        """The rows older than ``cutoff``. On PostgreSQL the same statement finds the
        highest eligible id, which the run's batches then take as their bound."""
        known, self._known_eligible = self._known_eligible, None
        if known is not None and known[0] == cutoff:
            return known[1]
        if not self.db.is_sqlite:
            with self._run.transaction() as conn:
                eligible, upper = conn.execute(self._statements.survey,
                                               {"cutoff": cutoff}).one()
            self._known_upper = (cutoff, None if upper is None else int(upper))
            return int(eligible)
        query = select(func.count()).select_from(self.table).where(
            older_than(self.table.c.created_at, cutoff, sqlite=True))
        with self._run.transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def upper_bound(self, cutoff: datetime) -> int | None:
        """The highest id of a row older than ``cutoff``, taken once per run; None when no
        row is. Batches never look past it, so the last, short batch stops there instead
        of reading every newer row to the end of the table. A row made eligible later in
        the run (a backdated insert above the bound) waits for the next run."""
        known, self._known_upper = self._known_upper, None
        if known is not None and known[0] == cutoff:
            return known[1]
        with self._run.transaction() as conn:
            upper = conn.execute(self._statements.upper, {"cutoff": cutoff}).scalar()
        return None if upper is None else int(upper)

    def _bounds(self, conn: Connection | OwnConnection, cutoff: datetime,
                after_id: int | None, size: int, upper: int) -> tuple[int, bool] | None:
        """The last id of the next batch and whether more may follow; None when none is left."""
        params = {"after": FIRST if after_id is None else after_id, "cutoff": cutoff,
                  "size": size, "upper": upper}
        last, found = conn.execute(self._statements.bounds, params).one()
        return None if not found else (int(last), int(found) >= size)

    def _range(self, cutoff: datetime, after_id: int | None, last_id: int) -> dict[str, Any]:
        return {"after": FIRST if after_id is None else after_id, "last": last_id,
                "cutoff": cutoff}

    def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
        """Delete eligible rows ``size`` at a time in id order; yield each batch's count.

        A worker thread picks the next batch on a second connection while this thread
        deletes the current one, so the database works on both at once, and both
        connections autocommit: on PostgreSQL one round trip per statement, which on a busy
        two-core machine mattered more than the batch size. SQLite has one writer, but in
        WAL mode its readers never wait for it: picking the next batch beside the delete
        took a fifth off a million-row walk (a checkpoint moved off the deleting connection
        too gained little more, and kept the WAL from rewinding). No delete is in flight
        when a count is yielded (at most the next batch's read): a caller that stops there
        leaves no batch half done.
        """
        after: int | None = None
        upper = self.upper_bound(cutoff)
        if upper is None:
            return
        # Each delete commits durably (PostgreSQL: synchronous_commit as the server has
        # it): a count in the summary is of rows that stay deleted after a server crash.
        selector, deleter = OwnConnection(self.db), OwnConnection(self.db)

        def bounds_after(after_id: int | None) -> tuple[int, bool] | None:
            return self._bounds(selector, cutoff, after_id, size, upper)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-logs") as worker:
            try:
                reading = worker.submit(bounds_after, after)
                deleter.open()  # while the first bounds are read
                while (bounds := reading.result()) is not None:
                    last, more = bounds
                    if more:  # the next bounds are read while this batch is deleted
                        reading = worker.submit(bounds_after, last)
                    # The delete runs on this thread: the next one starts as soon as the
                    # caller asks, with no hand-over to a worker on the way.
                    yield deleter.rowcount(self._statements.delete_range,
                                           self._range(cutoff, after, last))
                    if not more:
                        return
                    after = last
            finally:
                worker.submit(selector.close)  # after any read in flight, on its thread
                deleter.close()

    def spans(self, cutoff: datetime, size: int) -> Generator[tuple[int | None, int], None, None]:
        """``(after_id, last_id)`` of each batch of ``size`` eligible rows in id order, one
        bounds statement each (as the delete-only path picks its batches), on a connection
        of its own so a caller can ask for the next while batches are deleted. Nothing is
        cut up front: cutting every batch in one window over all the eligible rows cost
        half a second per million rows before any batch could start."""
        upper = self.upper_bound(cutoff)
        if upper is None:
            return
        selector = OwnConnection(self.db)
        after: int | None = None
        try:
            while (bounds := self._bounds(selector, cutoff, after, size, upper)) is not None:
                last, more = bounds
                yield after, last
                if not more:
                    return
                after = last
        finally:
            selector.close()

    def held(self) -> HeldDeletes:
        """PostgreSQL's archive path (``HeldLogs``); close it when the run is over."""
        return HeldDeletes(self.db, self.table, self.spans)

    def batches(
        self, cutoff: datetime, size: int, after_id: int | None = None
    ) -> Generator[LogBatch, None, None]:
        """Batches in id order; on PostgreSQL several are read at once (``read_ahead``),
        elsewhere the next one on a worker thread, while the caller archives the current
        one (the server encodes the JSON, gzip releases the GIL)."""
        upper = self.upper_bound(cutoff)
        if upper is None:
            return
        if not self.db.is_sqlite:
            with self._run.transaction() as conn:
                ranges = batch_ranges(conn, self.table, size, after=after_id, upper=upper,
                                      cutoff=cutoff)
            yield from read_ahead(self.db, self.table, cutoff, size, ranges, upper)
            return
        reader = BatchReader(self.db, self.table, upper)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-logs") as worker:

            def read(after: int | None) -> Future[LogBatch | None]:
                with self._run.transaction() as conn:  # before the read's snapshot
                    version = sqlite.read_version(conn)
                return worker.submit(reader.read, cutoff, size, after, version=version)

            try:
                pending = read(after_id)
                while (batch := pending.result()) is not None:
                    more = batch.rows >= size
                    if more:
                        pending = read(batch.last_id)
                    yield batch
                    if not more:
                        return  # a short batch ends the snapshot: no scan to find nothing
            finally:
                worker.submit(reader.close)  # after any read in flight, on its thread

    def delete_batch(self, batch: LogBatch, cutoff: datetime, record: CatalogRecord) -> bool:
        try:
            with self._run.transaction() as conn:
                if self.db.is_sqlite:
                    # The catalogue row first: writing takes SQLite's write lock, so no
                    # row of the range can change between the comparison and the delete.
                    catalogue(conn, record)
                    if not sqlite.delete_archived(conn, self._sqlite_lines(conn), batch,
                                                  cutoff):
                        raise _RangeChanged
                    return True
                rows, version = conn.exec_driver_sql(
                    self._delete_archived_sql(conn),
                    (batch.first_id, batch.last_id, cutoff)).one()
                if (int(rows), version) != (batch.rows, batch.version):
                    # A row in the range was added, removed or changed since the batch was
                    # read: deleting could remove a version that is not in the archive.
                    raise _RangeChanged
                catalogue(conn, record)
        except _RangeChanged:
            return False
        return True

    def _delete_archived_sql(self, conn: Connection) -> str:
        if self._delete_archived is None:
            self._delete_archived = postgres.delete_archived_sql(conn, self.table)
        return self._delete_archived

    def _sqlite_lines(self, conn: Connection) -> SqliteLines:
        if self._lines is None:
            self._lines = SqliteLines.of(conn, self._full_table(conn))
        return self._lines

    def _full_table(self, conn: Connection) -> Table:
        if self._full is None:
            self._full = full_table(conn, self.table)
        return self._full

    def settle_archived(self, rows: Mapping[int, Mapping[str, Any]], cutoff: datetime,
                        record: CatalogRecord) -> Settlement:
        ids = sorted(rows)
        try:
            with self._run.transaction() as conn:
                gone = self._delete_ids(conn, ids, cutoff)
                stale = sorted(i for i, content in gone.items() if content != rows[i])
                left = self._present(conn, ids)  # in the table still: newer than the cutoff
                if stale or left:
                    raise _Stale(sorted(set(stale) | set(left)))
                catalogue(conn, record)
        except _Stale as exc:
            return Settlement(0, exc.ids)
        return Settlement(len(gone), [])

    def _delete_ids(self, conn: Connection, ids: Sequence[int],
                    cutoff: datetime) -> dict[int, dict[str, Any]]:
        if not self.db.is_sqlite:
            return postgres.delete_ids(conn, self.table, ids, cutoff)
        return sqlite.delete_ids(conn, self._full_table(conn), ids, cutoff)

    def _present(self, conn: Connection, ids: Sequence[int]) -> list[int]:
        present: list[int] = []
        for start in range(0, len(ids), IDS_PER_STATEMENT):
            chunk = list(ids[start:start + IDS_PER_STATEMENT])
            query = select(self.table.c.id).where(self.table.c.id.in_(chunk))
            present += [int(row_id) for row_id in conn.execute(query).scalars()]
        return present

    def source_identity(self) -> str:
        """A short name for this database's table, stable across runs: from the creation
        time of opsctl's tables in it (a database restored from a backup keeps it), or,
        before they exist (a dry run), from the URL."""
        import hashlib

        origin = self.db.safe_url
        with self._run.transaction() as conn:
            if inspect(conn).has_table(tables.schema_version.name):
                c = tables.schema_version.c
                created = conn.execute(select(c.applied_at).where(c.version == 1)).scalar()
                if created is not None:
                    origin = created.isoformat()
        return hashlib.sha256(f"{origin}|{self.table.fullname}".encode()).hexdigest()[:16]

    def is_catalogued(self, uri: str, key: str) -> bool:
        c = tables.archive_objects.c
        with self._run.transaction() as conn:
            return bool(conn.execute(select(exists().where(c.uri == uri, c.key == key)))
                        .scalar_one())


class _Stale(Exception):
    """Rolls back the settling of an object whose rows changed since it was written."""

    def __init__(self, ids: list[int]) -> None:
        super().__init__(ids)
        self.ids = ids
