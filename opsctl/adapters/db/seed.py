"""Bulk writes into the export table for ``demo seed``.

PostgreSQL gets ``COPY ... FROM STDIN`` on the driver connection underneath SQLAlchemy's,
so the rows travel in one stream inside the same transaction; SQLite gets ``executemany``
per chunk, all chunks in one transaction (one fsync, not one per row). Either way a seed
commits whole or not at all, and the indexes come with the table only when the seed
creates it: adding indexes to an existing production table would lock it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import Connection, Table, delete, func, inspect, select, text

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.tables import source_indexes
from opsctl.errors import DatabaseUnavailable
from opsctl.ports import ExportRow, ExportRowSink


class ExportTableSeeder:
    """``ExportTableSeeder`` on the configured database and source table."""

    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.table = table

    def row_count(self) -> int | None:
        path = self.db.sqlite_path
        if self.db.read_only and path is not None and not path.exists():
            return None  # a dry run before the first real run: nothing exists yet
        with self.db.connect() as conn:
            if not inspect(conn).has_table(self.table.name, schema=self.table.schema):
                return None
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    @contextmanager
    def seeding(self, *, truncate: bool) -> Iterator[ExportRowSink]:
        with self.db.begin() as conn:
            if self.db.is_sqlite:
                _begin_sqlite(conn)
            created = not inspect(conn).has_table(self.table.name, schema=self.table.schema)
            if created:
                self.table.create(conn)
            removed = self._truncate(conn) if truncate else 0
            if self.db.is_sqlite:
                yield _InsertSink(conn, self.table, removed)
            else:
                with _CopySink(conn, self.table, removed, self.db.safe_url) as sink:
                    yield sink
            if created:  # built once over the loaded rows: cheaper than maintained per row
                for index in source_indexes(self.table):
                    index.create(conn)
            if not self.db.is_sqlite:
                # Fresh statistics, so the first metrics query after a seed plans well.
                conn.execute(text(f"ANALYZE {_quoted_table(conn, self.table)}"))

    def _truncate(self, conn: Connection) -> int:
        removed = int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())
        if self.db.is_sqlite:
            conn.execute(delete(self.table))  # ids restart at 1: SQLite reuses max(rowid) + 1
        else:
            conn.execute(text(f"TRUNCATE TABLE {_quoted_table(conn, self.table)} "
                              "RESTART IDENTITY"))
        return removed


class _InsertSink:
    def __init__(self, conn: Connection, table: Table, removed: int) -> None:
        self.conn = conn
        self.removed = removed
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(table.c[key].name) for key in ExportRow._fields)
        marks = ", ".join("?" * len(ExportRow._fields))
        self._sql = f"INSERT INTO {_quoted_table(conn, table)} ({names}) VALUES ({marks})"
        # The column type's own conversion, so timestamps are stored exactly as SQLAlchemy
        # stores them elsewhere; the rest of the statement skips its per-row overhead.
        self._time = table.c.created_at.type.bind_processor(conn.dialect) or _same

    def write(self, rows: Sequence[ExportRow]) -> None:
        if rows:
            at = self._time
            self.conn.exec_driver_sql(self._sql, [
                (*row[:_TIMES], at(row.created_at), at(row.expires_at)) for row in rows])


class _CopySink:
    """One ``COPY`` for the whole seed: the server parses and stores rows while the next
    chunk is being generated, instead of both sides waiting at the end of every chunk."""

    def __init__(self, conn: Connection, table: Table, removed: int, where: str) -> None:
        self.conn = conn
        self.removed = removed
        self.where = where
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(table.c[key].name) for key in ExportRow._fields)
        self._sql = f"COPY {_quoted_table(conn, table)} ({names}) FROM STDIN"
        self._stack = ExitStack()
        self._copy: Any = None

    def write(self, rows: Sequence[ExportRow]) -> None:
        with self._translated():
            if self._copy is None:
                # Below SQLAlchemy, so its error translation does not see this: ours does.
                driver: Any = self.conn.connection.driver_connection
                cursor = self._stack.enter_context(driver.cursor())
                self._copy = self._stack.enter_context(cursor.copy(self._sql))
                self._copy.set_types(_COPY_TYPES)  # no per-value dumper lookup
            write_row = self._copy.write_row
            for row in rows:
                write_row(row)

    def __enter__(self) -> _CopySink:
        return self

    def __exit__(self, *exc: Any) -> None:
        # Ends the COPY (or aborts it when an exception is on its way out); the server
        # reports bad rows here, at the end of the stream.
        with self._translated():
            self._stack.__exit__(*exc)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DatabaseUnavailable(f"database error ({self.where}): COPY failed: {detail}"
                                      ) from exc


# Text COPY: the server parses each value for the column's real type, so an existing table
# with other types (uuid, timestamp) still loads.
_COPY_TYPES = ["text"] * 4 + ["int8"] * 3 + ["text"] * 3 + ["timestamptz"] * 2
_TIMES = ExportRow._fields.index("created_at")
assert ExportRow._fields[_TIMES:] == ("created_at", "expires_at")


def _same(value: Any) -> Any:
    return value


def _begin_sqlite(conn: Connection) -> None:
    """Open the SQLite transaction now, before the CREATE TABLE.

    Python's sqlite3 only begins a transaction at the first INSERT, so the table would be
    committed on its own: a failed seed would then leave an empty table, and the next seed,
    finding the table, would never add its indexes.
    """
    driver: Any = conn.connection.driver_connection
    if not driver.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _quoted_table(conn: Connection, table: Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)
