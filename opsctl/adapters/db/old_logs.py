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

An archived batch is deleted only in the versions that were read and archived (see
``log_lines``): the delete returns what it removed, compares it with the batch inside its
own transaction, and rolls back on any difference; the catalog row of its object is
written in that same transaction, so a catalogued object always holds rows that are gone
and a crash never leaves a catalogue row for rows still in the table.

Statistics are one statement: the min/max of ``created_at`` are two index probes and the
eligible count an index-only range scan of the ``created_at`` index. The total is an exact
``count(*)``: PostgreSQL has no cheaper exact answer, and it runs as a parallel index-only
scan of that same index, about 0.2 s per million rows (an estimate would be instant but
is what people misread in an incident).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    inspect,
    select,
    text,
)

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database, RunConnection, translate_errors
from opsctl.adapters.db.instants import not_comparable, older_than
from opsctl.adapters.db.log_lines import (
    ROW_VERSION,
    BatchReader,
    encode_row,
    full_table,
    lines_version,
)
from opsctl.adapters.db.tables import source_table
from opsctl.ports import CatalogRecord, LogBatch, LogTableStats, PoisonRow, Settlement

if TYPE_CHECKING:
    from opsctl.settings.data import SourceSettings

# Rows per statement when deleting an explicit list of ids (SQLite's variable limit).
_IDS_PER_STATEMENT = 500
# Poison rows reported by one run at most (their count is always exact).
_POISON_REPORTED = 100


# Below every id: the "after" of the first batch, so one prepared statement serves them all.
_FIRST = -(2**63)


class _BatchStatements:
    """The two statements of a delete-only batch, built once: a run executes them a few
    hundred times, and rebuilding them each time cost a quarter of the run."""

    def __init__(self, table: Table, sqlite: bool) -> None:
        c = table.c
        after = bindparam("after", type_=c.id.type)
        cutoff = bindparam("cutoff", type_=c.created_at.type)
        older = older_than(c.created_at, cutoff, sqlite=sqlite)
        upper = bindparam("upper", type_=c.id.type)
        batch = (select(c.id).where(c.id > after, c.id <= upper, older)
                 .order_by(c.id).limit(bindparam("size")).subquery())
        self.bounds = select(func.max(batch.c.id), func.count())
        # Two statements (these bounds, then this delete), not one ``WITH ... DELETE ...
        # RETURNING``: returning the ids only to count them made the cleanup 1.5x slower.
        self.delete_range = delete(table).where(
            c.id > after, c.id <= bindparam("last", type_=c.id.type), older)
        # The highest eligible id, from the created_at index: ``max(id + 0)`` keeps the
        # planner off the backward primary-key walk a plain ``max(id)`` invites (every
        # row newer than the cutoff read to find the first old one).
        plus_zero = c.id if sqlite else c.id + 0
        self.upper = select(func.max(plus_zero)).where(older)


class _RangeChanged(Exception):
    """Rolls back a batch delete whose rows are not the ones that were archived."""


class OldLogsRepository:
    """``LogStatsSource`` and ``OldLogs`` on the configured table (columns remapped)."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())
        self._run = RunConnection(db)
        self._statements = _BatchStatements(self.table, db.is_sqlite)
        self._full: Table | None = None
        self._delete_archived: str | None = None

    def close(self) -> None:
        self._run.close()

    # --- stats ---------------------------------------------------------------------------

    def stats(self, cutoff: datetime) -> LogTableStats:
        c = self.table.c
        sqlite = self.db.is_sqlite

        def scalar(*columns: Any, where: Any = None) -> Any:
            query = select(*columns).select_from(self.table)
            return (query if where is None else query.where(where)).scalar_subquery()

        def bound(order: Any) -> Any:
            if not sqlite:
                return scalar(func.min(c.created_at) if order is None else func.max(
                    c.created_at))
            # The first and last timestamps in index order, past any poison value.
            ordered = c.created_at.asc() if order is None else c.created_at.desc()
            return (select(c.created_at).where(~not_comparable(c.created_at))
                    .order_by(ordered).limit(1).scalar_subquery())

        query = select(
            scalar(func.count()),
            scalar(func.count(), where=older_than(c.created_at, cutoff, sqlite=sqlite)),
            bound(None),
            bound("desc"),
        )
        with self._run.transaction() as conn:
            total, eligible, oldest, newest = conn.execute(query).one()
            poison = self._poison(conn, None) if sqlite else []
        return LogTableStats(int(total), int(eligible), oldest, newest, poison)

    def poison_rows(self, cutoff: datetime) -> Sequence[PoisonRow]:
        if not self.db.is_sqlite:
            return []  # timestamptz: every value is an instant
        with self._run.transaction() as conn:
            return self._poison(conn, cutoff)

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
        guard's minimum."""
        with self._run.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def count_eligible(self, cutoff: datetime) -> int:
        query = select(func.count()).select_from(self.table).where(
            older_than(self.table.c.created_at, cutoff, sqlite=self.db.is_sqlite))
        with self._run.transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def upper_bound(self, cutoff: datetime) -> int | None:
        """The highest id of a row older than ``cutoff``, taken once per run; None when no
        row is. Batches never look past it, so the last, short batch stops there instead
        of reading every newer row to the end of the table. A row made eligible later in
        the run (a backdated insert above the bound) waits for the next run."""
        with self._run.transaction() as conn:
            upper = conn.execute(self._statements.upper, {"cutoff": cutoff}).scalar()
        return None if upper is None else int(upper)

    def _bounds(self, conn: Connection | _OwnConnection, cutoff: datetime,
                after_id: int | None, size: int, upper: int) -> tuple[int, bool] | None:
        """The last id of the next batch and whether more may follow; None when none is left."""
        params = {"after": _FIRST if after_id is None else after_id, "cutoff": cutoff,
                  "size": size, "upper": upper}
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
        upper = self.upper_bound(cutoff)
        if upper is None:
            return
        if self.db.is_sqlite:  # one writer at a time: nothing to overlap
            while True:
                with self._run.transaction() as conn:
                    bounds = self._bounds(conn, cutoff, after, size, upper)
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
                bounds = self._bounds(selector, cutoff, after, size, upper)
                while bounds is not None:
                    last, more = bounds
                    deleting = worker.submit(deleter.rowcount, self._statements.delete_range,
                                             self._range(cutoff, after, last))
                    bounds = (self._bounds(selector, cutoff, last, size, upper) if more
                              else None)
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
        upper = self.upper_bound(cutoff)
        if upper is None:
            return
        reader = BatchReader(self.db, self.table, upper)
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

    def delete_batch(self, batch: LogBatch, cutoff: datetime, record: CatalogRecord) -> bool:
        try:
            with self._run.transaction() as conn:
                if self.db.is_sqlite:
                    rows, version = self._delete_sqlite(conn, batch, cutoff)
                else:
                    rows, version = conn.exec_driver_sql(
                        self._delete_archived_sql(conn),
                        (batch.first_id, batch.last_id, cutoff)).one()
                if (int(rows), version) != (batch.rows, batch.version):
                    # A row in the range was added, removed or changed since the batch was
                    # read: deleting could remove a version that is not in the archive.
                    raise _RangeChanged
                _catalogue(conn, record)
        except _RangeChanged:
            return False
        return True

    def _delete_archived_sql(self, conn: Connection) -> str:
        """PostgreSQL: delete a batch's range, returning the count and version of what went."""
        if self._delete_archived is None:
            from psycopg import sql

            c = self.table.c
            schema = [self.table.schema] if self.table.schema else []
            query = sql.SQL(
                "WITH gone AS (DELETE FROM {table} AS x WHERE x.{id} >= %s AND x.{id} <= %s "
                "AND x.{created_at} < %s RETURNING x.{id} AS id, "
                + ROW_VERSION.format(alias="x") + " AS v) "
                "SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM gone"
            ).format(
                table=sql.Identifier(*schema, self.table.name),
                id=sql.Identifier(c.id.name),
                created_at=sql.Identifier(c.created_at.name),
            )
            self._delete_archived = query.as_string(conn.connection.driver_connection)
        return self._delete_archived

    def _full_table(self, conn: Connection) -> Table:
        if self._full is None:
            self._full = full_table(conn, self.table)
        return self._full

    def _delete_sqlite(self, conn: Connection, batch: LogBatch,
                       cutoff: datetime) -> tuple[int, str]:
        """Delete the batch's range and re-encode the removed rows into the batch's lines."""
        full = self._full_table(conn)
        c = full.c
        statement = (delete(full)
                     .where(c.id >= batch.first_id, c.id <= batch.last_id,
                            older_than(c.created_at, cutoff, sqlite=True))
                     .returning(*full.columns))
        names = [column.name for column in full.columns]
        id_index = names.index(c.id.name)
        gone = sorted(conn.execute(statement).all(), key=lambda row: row[id_index])
        payload = b"".join(encode_row(names, tuple(row)) for row in gone)
        return len(gone), lines_version(payload)

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
                _catalogue(conn, record)
        except _Stale as exc:
            return Settlement(0, exc.ids)
        return Settlement(len(gone), [])

    def _delete_ids(self, conn: Connection, ids: Sequence[int],
                    cutoff: datetime) -> dict[int, dict[str, Any]]:
        """Delete these rows where older than the cutoff; their content as archived lines."""
        found: dict[int, dict[str, Any]] = {}
        if not self.db.is_sqlite:
            from psycopg import sql

            c = self.table.c
            schema = [self.table.schema] if self.table.schema else []
            query = sql.SQL(
                "DELETE FROM {table} AS x WHERE x.{id} = ANY(%s) AND x.{created_at} < %s "
                "RETURNING x.{id}, row_to_json(x)::text"
            ).format(table=sql.Identifier(*schema, self.table.name),
                     id=sql.Identifier(c.id.name),
                     created_at=sql.Identifier(c.created_at.name))
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")  # the JSON's timestamps
            for row_id, line in conn.exec_driver_sql(
                    query.as_string(conn.connection.driver_connection), (list(ids), cutoff)):
                found[int(row_id)] = json.loads(line)
            return found
        full = self._full_table(conn)
        c = full.c
        names = [column.name for column in full.columns]
        id_index = names.index(c.id.name)
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = list(ids[start:start + _IDS_PER_STATEMENT])
            statement = (delete(full)
                         .where(c.id.in_(chunk), older_than(c.created_at, cutoff, sqlite=True))
                         .returning(*full.columns))
            for row in conn.execute(statement):
                found[int(row[id_index])] = json.loads(encode_row(names, tuple(row)))
        return found

    def _present(self, conn: Connection, ids: Sequence[int]) -> list[int]:
        present: list[int] = []
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = list(ids[start:start + _IDS_PER_STATEMENT])
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


def _catalogue(conn: Connection, record: CatalogRecord) -> None:
    conn.execute(insert(tables.archive_objects).values(
        uri=record.uri, key=record.key, source_table=record.source_table,
        first_id=record.first_id, last_id=record.last_id, rows=record.rows,
        bytes=record.bytes, sha256=record.sha256, min_created_at=record.min_created_at,
        max_created_at=record.max_created_at, run_id=record.run_id,
        created_at=record.created_at))


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
