"""Archived rows back into a table: ``COPY`` on PostgreSQL, batched inserts on SQLite.

PostgreSQL: the object's JSON lines stream, as they are read, through ``COPY ... FROM
STDIN`` into a one-column ``jsonb`` temporary table (under a savepoint per object), and
every 10 objects (or 50,000 rows) one statement inserts ``jsonb_populate_record`` of each staged line
whose id is not in the table yet, inside the window, and commits. The lines go in as CSV with quote and delimiter set to control
characters JSON never leaves unescaped, so COPY takes each line verbatim (its text format
would undo every backslash). The temporary table is emptied at each commit; a failed or
aborted object rolls back and leaves the target untouched. ``jsonb_populate_record``
against the table's own row type gives every column its type back from the text
``row_to_json`` wrote: timestamps with their zone, NULLs, unicode, large text.

SQLite: the object's rows are parsed here, the window applied, the ids already present
read in one range query, and the rest inserted in batches, all in one transaction per
object, with the same column types the table was written with.

A dry run (a READ ONLY transaction on PostgreSQL, where even a temporary table is refused)
parses the rows here on both backends and only counts the ids already present.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, DateTime, MetaData, Table, inspect, select

from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.tables import source_table
from opsctl.domain.archive_check import BadObject
from opsctl.errors import ConfigError, DatabaseUnavailable
from opsctl.ports import LoadCounts, RestoreWindow

_STAGING = "opsctl_restore_lines"
_INSERT_BATCH = 1000
_IDS_PER_QUERY = 500


class SqlRestoreTarget:
    """``RestoreTarget`` on ``table`` (the source table, or ``--into``); ``source`` is the
    configured source table whose columns it must have."""

    def __init__(self, db: Database, table: str, source: str, columns: dict[str, str],
                 *, config_key: str | None = "source.table") -> None:
        self.db = db
        self.table = table
        self.source = source
        self.columns = columns
        self.config_key = config_key
        self.id_name = columns.get("id", "id")
        self.created_name = columns.get("created_at", "created_at")
        self._conn: Connection | None = None
        self._full: Table | None = None
        self._group: _Group | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            with translate_errors(self.db):
                conn = self.db.engine.connect()
                if not self.db.is_sqlite and not self.db.read_only:
                    # An object's commit lost to a server crash is restored again by the
                    # next run (ids present are skipped), so no commit waits for its WAL
                    # flush (the peer it is measured against, one COPY and one INSERT, flushes once).
                    conn.exec_driver_sql("SET synchronous_commit TO OFF")
                    conn.commit()
                self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with translate_errors(self.db):
                conn.close()

    # --- the table ---------------------------------------------------------------------

    def check(self) -> None:
        conn = self._connection()
        with translate_errors(self.db):
            mine = self._column_names(conn, self.table)
            if mine is None:
                raise ConfigError(f"restore target table {self.table} does not exist; "
                                  "nothing restored", key=self.config_key)
            if self.table != self.source:
                theirs = self._column_names(conn, self.source)
                if theirs is not None and set(mine) != set(theirs):
                    extra = sorted(set(mine) - set(theirs))
                    lacking = sorted(set(theirs) - set(mine))
                    raise ConfigError(
                        f"table {self.table} does not have the columns of {self.source} "
                        f"(missing: {', '.join(lacking) or 'none'}; extra: "
                        f"{', '.join(extra) or 'none'}); nothing restored",
                        key=self.config_key)
            for name in (self.id_name, self.created_name):
                if name not in mine:
                    raise ConfigError(f"table {self.table} has no column {name!r}; "
                                      "nothing restored", key=self.config_key)
            conn.rollback()
        self._full = self._table(conn)

    def _column_names(self, conn: Connection, table: str) -> list[str] | None:
        schema, _, name = table.rpartition(".")
        inspector = inspect(conn)
        if not inspector.has_table(name, schema=schema or None):
            return None
        return [c["name"] for c in inspector.get_columns(name, schema=schema or None)]

    def _table(self, conn: Connection) -> Table:
        """The target with opsctl's types for the columns it knows (UTC timestamps), the
        reflected type for any other, so values bind the way the rows were written."""
        known = {c.name: c for c in source_table(self.table, self.columns).columns}
        schema, _, name = self.table.rpartition(".")
        with translate_errors(self.db):
            reflected = inspect(conn).get_columns(name, schema=schema or None)
            conn.rollback()
        columns = []
        for info in reflected:
            mine = known.get(info["name"])
            type_ = mine.type if mine is not None else info["type"]
            columns.append(Column(info["name"], type_, key=info["name"]))
        return Table(name, MetaData(), *columns, schema=schema or None)

    # --- one object --------------------------------------------------------------------

    def load(self, window: RestoreWindow, dry_run: bool) -> _PythonLoad | _CopyLoad:
        if self._full is None:
            self.check()
        assert self._full is not None
        if dry_run or self.db.is_sqlite:
            return _PythonLoad(self, self._full, window, write=not dry_run)
        if self._group is None:
            self._group = _Group(self, self._full, window)
        return _CopyLoad(self._group)

    def flush(self) -> LoadCounts:
        group, self._group = self._group, None
        return group.write() if group is not None and group.staged else LoadCounts(0, 0)

    def present(self, conn: Connection, table: Table, ids: Sequence[int]) -> set[int]:
        column = table.c[self.id_name]
        found: set[int] = set()
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = list(ids[start:start + _IDS_PER_QUERY])
            found.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        return found


class _PythonLoad:
    """Rows parsed here: SQLite's batched inserts, and every dry run."""

    def __init__(self, target: SqlRestoreTarget, table: Table, window: RestoreWindow,
                 *, write: bool) -> None:
        self.target = target
        self.table = table
        self.window = window
        self.write = write
        self.rows: list[dict[str, Any]] = []  # the object's rows in the window
        self._times = [c.name for c in table.columns
                       if isinstance(getattr(c.type, "impl", c.type), DateTime)]

    def add(self, block: bytes) -> None:
        created = self.target.created_name
        for line in block.splitlines():
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise BadObject(f"a line is not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise BadObject("a line is not a JSON object")
            for name in self._times:
                value = row.get(name)
                if isinstance(value, str):
                    try:
                        row[name] = datetime.fromisoformat(value)
                    except ValueError:
                        raise BadObject(f"{name} {value!r} is not a timestamp") from None
            moment = row.get(created)
            if isinstance(moment, datetime) and not _inside(self.window, moment):
                continue
            self.rows.append(row)

    def finish(self) -> LoadCounts:
        ids = [int(row[self.target.id_name]) for row in self.rows]
        conn = self.target._connection()
        with translate_errors(self.target.db):
            try:
                if self.target.db.is_sqlite and self.write:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the read
                present = self.target.present(conn, self.table, ids)
                fresh = [_only(row, self.table) for row in self.rows
                         if int(row[self.target.id_name]) not in present]
                if self.write:
                    for start in range(0, len(fresh), _INSERT_BATCH):
                        conn.execute(self.table.insert(), fresh[start:start + _INSERT_BATCH])
                    conn.commit()
                else:
                    conn.rollback()
            except BaseException:
                conn.rollback()
                raise
        return LoadCounts(len(self.rows), len(fresh))

    def abort(self) -> None:
        self.rows.clear()


def _inside(window: RestoreWindow, moment: datetime) -> bool:
    if window.since is not None and moment < window.since:
        return False
    return window.until is None or moment < window.until


def _only(row: dict[str, Any], table: Table) -> dict[str, Any]:
    return {c.name: row.get(c.name) for c in table.columns}


class _Group:
    """PostgreSQL: one transaction holding the lines of verified objects in a temporary
    jsonb table, written to the table by one INSERT ... SELECT every few objects.

    One INSERT and one commit per object cost a third more than grouping ten objects
    (measured with psql on the same data); an object that fails is rolled back to its own
    savepoint, so the objects staged before it stay.
    """

    def __init__(self, target: SqlRestoreTarget, table: Table, window: RestoreWindow) -> None:
        from psycopg import sql

        self.target = target
        self.window = window
        self.conn = target._connection()
        self.staged = 0
        self.objects = 0
        self._sql = sql
        self._table = sql.Identifier(*([table.schema] if table.schema else []), table.name)
        with translate_errors(target.db), _pg_errors(target.db):
            self.conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (doc jsonb) "
                "ON COMMIT DELETE ROWS")
            raw = self.conn.connection.driver_connection
            assert raw is not None
            self.cursor = raw.cursor()

    def write(self) -> LoadCounts:
        """INSERT the staged rows whose id is absent (inside the window) and commit.

        A plain INSERT ... WHERE NOT EXISTS counted by its rowcount: a CTE that returned
        and counted the rows, or ON CONFLICT, took half as long again. The job lock keeps
        other restores out, and the application never writes archived ids.
        """
        sql = self._sql
        window = self.window
        bounded = window.since is not None or window.until is not None
        names = {"staging": sql.Identifier(_STAGING), "table": self._table,
                 "created": sql.Identifier(self.target.created_name),
                 "id": sql.Identifier(self.target.id_name)}
        rows = "FROM {staging} s, jsonb_populate_record(NULL::{table}, s.doc) r "
        inside = ("(%(since)s::timestamptz IS NULL OR r.{created} >= %(since)s) AND "
                  "(%(until)s::timestamptz IS NULL OR r.{created} < %(until)s)")
        insert = ("INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT r.* " + rows
                  + "WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{id} = r.{id})")
        if bounded:
            insert += " AND " + inside
        params = {"since": window.since, "until": window.until}
        try:
            with translate_errors(self.target.db), _pg_errors(self.target.db):
                matching = self.staged
                if bounded:
                    count = sql.SQL("SELECT count(*) " + rows + "WHERE " + inside)
                    self.cursor.execute(count.format(**names), params)
                    matching = int(self.cursor.fetchone()[0])
                self.cursor.execute(sql.SQL(insert).format(**names), params)
                restored = int(self.cursor.rowcount)
                self.conn.commit()
        except BaseException:
            with suppress(Exception):
                self.conn.rollback()
            raise
        return LoadCounts(matching, restored)


class _CopyLoad:
    """One object's lines streamed by COPY into the group's staging table, under a
    savepoint of their own."""

    # A group is written after this many objects or rows, whichever comes first.
    GROUP_OBJECTS = 10
    GROUP_ROWS = 50_000

    def __init__(self, group: _Group) -> None:
        self.group = group
        self._lines = 0
        self._done = False
        with translate_errors(group.target.db), _pg_errors(group.target.db):
            group.cursor.execute("SAVEPOINT opsctl_object")
            self._stack = ExitStack()
            self._copy: Any = self._stack.enter_context(group.cursor.copy(
                f"COPY {_STAGING} (doc) FROM STDIN "
                "(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"))

    def add(self, block: bytes) -> None:
        self._lines += block.count(b"\n")
        with translate_errors(self.group.target.db), _pg_errors(self.group.target.db):
            self._copy.write(block)

    def finish(self) -> LoadCounts:
        group = self.group
        try:
            with translate_errors(group.target.db), _pg_errors(group.target.db):
                self._copy = None
                self._stack.close()  # ends the COPY: a line PostgreSQL refuses shows here
                group.cursor.execute("RELEASE SAVEPOINT opsctl_object")
        except BaseException:
            self.abort()
            raise
        self._done = True
        group.staged += self._lines
        group.objects += 1
        if group.staged >= self.GROUP_ROWS or group.objects >= self.GROUP_OBJECTS:
            return group.target.flush()
        return LoadCounts(0, 0)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        copy, self._copy = self._copy, None
        db = self.group.target.db
        with translate_errors(db), _pg_errors(db):
            if copy is not None:
                # The COPY is being thrown away: however it ends, the rollback follows.
                with suppress(Exception):
                    self._stack.__exit__(BadObject, BadObject("aborted"), None)
            self.group.cursor.execute("ROLLBACK TO SAVEPOINT opsctl_object")


@contextmanager
def _pg_errors(db: Database) -> Iterator[None]:
    """Errors of the raw psycopg cursor: a line PostgreSQL refuses (not JSON, a value of
    the wrong type) fails the object, not the run; anything else is the database's."""
    import psycopg

    try:
        yield
    except psycopg.DataError as exc:
        raise BadObject(f"PostgreSQL refused a row: {str(exc).splitlines()[0]}") from exc
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()
        raise DatabaseUnavailable(
            f"database error ({db.safe_url}): {detail[0] if detail else type(exc).__name__}"
        ) from exc
