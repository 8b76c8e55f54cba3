"""The export-log rows ``logs stats`` reports and ``logs cleanup`` removes.

Rows are walked by keyset on the id (``id > last ORDER BY id LIMIT n``), and a batch is
deleted by its id range (``id > last AND id <= max_of_batch AND created_at < cutoff``),
which measured about twice as fast on PostgreSQL as ``DELETE ... USING (SELECT ... LIMIT)``
and never re-reads the dead index entries earlier batches left behind. Each batch is its own
short transaction, so the application writing the table never waits on a cleanup for long.

Connections are kept for the whole run, since with no pool a fresh connection per batch
would cost more than the batch: the run connection (counts, archived deletes), plus one for
the batch reader of an archive run, or two autocommit ones (one picks the next batch, one
deletes the current) for a delete-only run. Close the repository when the run is over.

Statistics are one statement: the min/max of ``created_at`` are two index probes and the
eligible count an index-only range scan of the ``created_at`` index. The total is an exact
``count(*)``: PostgreSQL has no cheaper exact answer, and it runs as a parallel index-only
scan of that same index, about 0.2 s per million rows (an estimate would be instant but
is what people misread in an incident).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, delete, func, select, text

from opsctl.adapters.db.database import Database, RunConnection, translate_errors
from opsctl.adapters.db.log_lines import BatchReader
from opsctl.adapters.db.tables import source_table
from opsctl.ports import LogBatch, LogTableStats

if TYPE_CHECKING:
    from opsctl.settings.data import SourceSettings

# Rows per statement when deleting an explicit list of ids (SQLite's variable limit).
_IDS_PER_STATEMENT = 500


# Below every id: the "after" of the first batch, so one prepared statement serves them all.
_FIRST = -(2**63)


class _BatchStatements:
    """The two statements of a delete-only batch, built once: a run executes them a few
    hundred times, and rebuilding them each time cost a quarter of the run."""

    def __init__(self, table: Table) -> None:
        c = table.c
        after = bindparam("after", type_=c.id.type)
        batch = (select(c.id)
                 .where(c.id > after,
                        c.created_at < bindparam("cutoff", type_=c.created_at.type))
                 .order_by(c.id).limit(bindparam("size")).subquery())
        self.bounds = select(func.max(batch.c.id), func.count())
        # Two statements (these bounds, then this delete), not one ``WITH ... DELETE ...
        # RETURNING``: returning the ids only to count them made the cleanup 1.5x slower.
        self.delete_range = delete(table).where(
            c.id > after, c.id <= bindparam("last", type_=c.id.type),
            c.created_at < bindparam("cutoff", type_=c.created_at.type))


class _RangeChanged(Exception):
    """Rolls back a batch delete whose rows are not the ones that were archived."""


class OldLogsRepository:
    """``LogStatsSource`` and ``OldLogs`` on the configured table (columns remapped)."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())
        self._run = RunConnection(db)
        self._statements = _BatchStatements(self.table)

    def close(self) -> None:
        self._run.close()

    # --- stats ---------------------------------------------------------------------------

    def stats(self, cutoff: datetime) -> LogTableStats:
        c = self.table.c

        def scalar(*columns: Any, where: Any = None) -> Any:
            query = select(*columns).select_from(self.table)
            return (query if where is None else query.where(where)).scalar_subquery()

        query = select(
            scalar(func.count()),
            scalar(func.count(), where=c.created_at < cutoff),
            scalar(func.min(c.created_at)),
            scalar(func.max(c.created_at)),
        )
        with self._run.transaction() as conn:
            total, eligible, oldest, newest = conn.execute(query).one()
        return LogTableStats(int(total), int(eligible), oldest, newest)

    # --- cleanup -------------------------------------------------------------------------

    def count_eligible(self, cutoff: datetime) -> int:
        query = select(func.count()).select_from(self.table)
        with self._run.transaction() as conn:
            return int(conn.execute(query.where(self.table.c.created_at < cutoff)).scalar_one())

    def _bounds(self, conn: Connection | _OwnConnection, cutoff: datetime,
                after_id: int | None, size: int) -> tuple[int, bool] | None:
        """The last id of the next batch and whether more may follow; None when none is left."""
        params = {"after": _FIRST if after_id is None else after_id, "cutoff": cutoff,
                  "size": size}
        last, found = conn.execute(self._statements.bounds, params).one()
        return None if not found else (int(last), int(found) >= size)

    def _range(self, cutoff: datetime, after_id: int | None, last_id: int) -> dict[str, Any]:
        return {"after": _FIRST if after_id is None else after_id, "last": last_id,
                "cutoff": cutoff}

    def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
        """Delete eligible rows ``size`` at a time in id order; yield each batch's count.

        On PostgreSQL a batch is deleted on a second connection while the first picks the
        next batch, so the server works on both at once, and both connections autocommit:
        one round trip per statement, which on a busy two-core machine mattered more than
        the batch size. Nothing is in flight when a count is yielded: a caller that stops
        there leaves no batch half done.
        """
        after: int | None = None
        if self.db.is_sqlite:  # one writer at a time: nothing to overlap
            while True:
                with self._run.transaction() as conn:
                    bounds = self._bounds(conn, cutoff, after, size)
                    if bounds is None:
                        return
                    last, more = bounds
                    deleted = int(conn.execute(self._statements.delete_range,
                                               self._range(cutoff, after, last)).rowcount or 0)
                yield deleted
                if not more:
                    return
                after = last
        selector = _OwnConnection(self.db)
        # A delete lost to a server crash only means the rows are deleted again next run,
        # so no commit waits for its WAL flush (which cost more than the delete itself).
        deleter = _OwnConnection(self.db, "SET synchronous_commit TO OFF")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-logs") as worker:
            try:
                bounds = self._bounds(selector, cutoff, after, size)
                while bounds is not None:
                    last, more = bounds
                    deleting = worker.submit(deleter.rowcount, self._statements.delete_range,
                                             self._range(cutoff, after, last))
                    bounds = self._bounds(selector, cutoff, last, size) if more else None
                    yield deleting.result()
                    after = last
            finally:
                selector.close()
                worker.submit(deleter.close)

    def batches(
        self, cutoff: datetime, size: int, after_id: int | None = None
    ) -> Generator[LogBatch, None, None]:
        """Batches in id order; the next one is read on a worker thread while the caller
        archives the current one (COPY waits on the server, gzip releases the GIL)."""
        reader = BatchReader(self.db, self.table)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-logs") as worker:
            try:
                pending = worker.submit(reader.read, cutoff, size, after_id)
                while (batch := pending.result()) is not None:
                    more = batch.rows >= size
                    if more:
                        pending = worker.submit(reader.read, cutoff, size, batch.last_id)
                    yield batch
                    if not more:
                        return  # a short batch ends the snapshot: no scan to find nothing
            finally:
                worker.submit(reader.close)  # after any read in flight, on its thread

    def delete_batch(self, batch: LogBatch, cutoff: datetime) -> bool:
        c = self.table.c
        statement = (delete(self.table)
                     .where(c.id >= batch.first_id, c.id <= batch.last_id,
                            c.created_at < cutoff)
                     .returning(c.id))
        try:
            with self._run.transaction() as conn:
                if self.db.is_sqlite:
                    ids = conn.execute(statement).scalars().all()
                    rows, id_sum = len(ids), sum(ids)
                else:
                    # Counted on the server: fetching every id only to add them up took
                    # a tenth of an archive run.
                    gone = statement.cte("gone")
                    rows, id_sum = conn.execute(
                        select(func.count(), func.coalesce(func.sum(gone.c.id), 0))).one()
                if (int(rows), int(id_sum)) != (batch.rows, batch.id_sum):
                    # A row in the range was added, removed or changed since the batch was
                    # read: deleting could remove a row that is not in the archive.
                    raise _RangeChanged
        except _RangeChanged:
            return False
        return True

    def delete_ids(self, ids: Sequence[int]) -> int:
        deleted = 0
        with self._run.transaction() as conn:
            for start in range(0, len(ids), _IDS_PER_STATEMENT):
                chunk = list(ids[start:start + _IDS_PER_STATEMENT])
                result = conn.execute(delete(self.table).where(self.table.c.id.in_(chunk)))
                deleted += int(result.rowcount or 0)
        return deleted


class _OwnConnection:
    """A connection of its own in autocommit mode (each statement its own transaction),
    opened by the first thread that uses it."""

    def __init__(self, db: Database, setup: str | None = None) -> None:
        self.db = db
        self.setup = setup
        self._conn: Connection | None = None

    def execute(self, statement: Any, params: dict[str, Any]) -> Any:
        with translate_errors(self.db):
            if self._conn is None:
                conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                if self.setup:
                    conn.execute(text(self.setup))
                self._conn = conn
            return self._conn.execute(statement, params)

    def rowcount(self, statement: Any, params: dict[str, Any]) -> int:
        return int(self.execute(statement, params).rowcount or 0)

    def close(self) -> None:
        if self._conn is not None:
            with translate_errors(self.db):
                self._conn.close()
            self._conn = None
