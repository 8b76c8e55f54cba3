"""One batch of old export-log rows as JSON lines, the body of an archive object.

PostgreSQL writes the lines itself: one statement per batch returns the batch's count,
id sum and bounds and its lines joined by ``string_agg(row_to_json(t)::text, ...)``. Letting
the server build the JSON measured about three times faster than encoding fetched rows in
Python, and one aggregated value beat ``COPY ... TO STDOUT`` too (500,000 rows: 4.8-5.6 s
against 6.4-6.7 s): COPY hands the client one message per row and doubles every backslash,
which then has to be undone. The price is PostgreSQL's 1 GB limit on one value, so a batch
must stay under that (5,000 rows of a few hundred bytes are about 2 MB). SQLite writes its
lines with ``json_object`` (``sqlite_lines``), and the rows it cannot write exactly are
encoded here. Every path gives the same bytes for the same row:

- keys are the table's real column names, in table order, every column included (also
  columns opsctl does not know), because an archive is read back without opsctl's config;
- timestamps are ISO 8601 in UTC as PostgreSQL's JSON writes them
  (``2026-11-20T10:00:00.5+00:00``: no trailing zeros in the fraction);
- text is exactly as stored; JSON escapes quotes, backslashes and control characters and
  leaves other unicode as UTF-8; no spaces after separators.

Each batch is one statement, hence one snapshot, so its bounds, row count and version
describe exactly the lines written. The version is what the delete compares to be sure it
removes those rows in those versions: on PostgreSQL the sum of a 64-bit hash of every
row's id and physical version (``tableoid``, ``ctid``, ``xmin``: any UPDATE makes a new
one), which costs little to recompute in the ``DELETE ... RETURNING``. SQLite's rows have
no version: there the batch carries the run connection's ``data_version`` from before the
read (see ``old_logs.sqlite``), and the lines themselves, which the delete re-encodes and
compares only when another connection has committed since.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, MetaData, Table, inspect, text

from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.instants import older_than
from opsctl.adapters.db.source_schema import missing_column
from opsctl.errors import OpsctlError
from opsctl.ports import LogBatch

if TYPE_CHECKING:
    from opsctl.adapters.db.sqlite_lines import SqliteLines


def json_timestamp(value: datetime) -> str:
    """A timestamp as PostgreSQL's ``row_to_json`` writes a timestamptz in UTC."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "+00:00"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return json_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()  # PostgreSQL's bytea output
    raise TypeError(f"cannot archive a {type(value).__name__} value")


def encode_row(names: list[str], values: tuple[Any, ...]) -> bytes:
    row = dict(zip(names, values, strict=True))
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"), default=_json_value)
    return text.encode() + b"\n"


# PostgreSQL: a 64-bit hash of one row's id and physical version; the read and the delete
# build it the same way and compare the count and the sum of these hashes. An ordered
# ``md5(string_agg(...))`` said the same but sorted and concatenated every version, which
# made each archived delete half again as slow; a changed row moves the sum unless two
# 64-bit hashes collide.
ROW_VERSION = ("hashtextextended({alias}.{{id}}::text || ':' || {alias}.tableoid::text || ':' "
               "|| {alias}.ctid::text || ':' || {alias}.xmin::text, 0)")


class BatchReader:
    """Reads batches on one connection of its own, opened by the thread that reads.

    The cleanup reads the next batch on a worker thread while the main thread compresses
    and deletes the current one, so each side needs its own connection (and SQLite's
    connections may only be used by the thread that opened them).
    """

    def __init__(self, db: Database, table: Table, upper: int | None = None) -> None:
        self.db = db
        self.table = table
        # No batch looks past this id (the run's highest eligible id), so the last, short
        # batch does not read every newer row to the end of the table.
        self.upper = 2**63 - 1 if upper is None else upper
        self._conn: Connection | None = None
        self._full: Table | None = None
        self._lines: SqliteLines | None = None

    def read(self, cutoff: datetime, size: int, after_id: int | None,
             last_id: int | None = None, version: str = "") -> LogBatch | None:
        """The next ``size`` eligible rows after ``after_id``, none past ``last_id`` (where
        the next batch, read at the same time, begins). ``version``: SQLite's, decided by
        the caller before the read (PostgreSQL's is read with the rows)."""
        upper = self.upper if last_id is None else min(self.upper, last_id)
        with translate_errors(self.db):
            if self._conn is None:
                conn = self.db.engine.connect()
                if not self.db.is_sqlite:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    # The JSON of a timestamptz carries the session's zone: make it UTC.
                    conn.execute(text("SET TIME ZONE 'UTC'"))
                self._conn = conn
            if not self.db.is_sqlite:
                return self._read_postgres(self._conn, cutoff, size, after_id, upper)
            with self._conn.begin():
                return self._read_sqlite(self._conn, cutoff, size, after_id, upper, version)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_postgres(
        self, conn: Connection, cutoff: datetime, size: int, after_id: int | None, upper: int
    ) -> LogBatch | None:
        from psycopg import sql

        c = self.table.c
        schema = [self.table.schema] if self.table.schema else []
        # ``x AS r`` is the whole row: its JSON has every column, as stored, and nothing
        # else; the version rides beside it.
        query = sql.SQL(
            "SELECT count(*), min(s.id), max(s.id), min(s.created_at), max(s.created_at), "
            "string_agg(row_to_json(s.r)::text, E'\\n' ORDER BY s.id), "
            "sum(s.v)::text "
            "FROM (SELECT x AS r, x.{id} AS id, x.{created_at} AS created_at, "
            + ROW_VERSION.format(alias="x") + " AS v "
            "FROM {table} AS x WHERE x.{id} > %s AND x.{id} <= %s AND x.{created_at} < %s "
            "ORDER BY x.{id} LIMIT %s) AS s"
        ).format(
            table=sql.Identifier(*schema, self.table.name),
            id=sql.Identifier(c.id.name),
            created_at=sql.Identifier(c.created_at.name),
        )
        raw = conn.connection.driver_connection
        after = -(2**63) if after_id is None else after_id
        # Through SQLAlchemy, so driver errors come out as DatabaseUnavailable/timeouts.
        rows, first, last, oldest, newest, lines, version = conn.exec_driver_sql(
            query.as_string(raw), (after, upper, cutoff, size)).one()
        if not rows:
            return None
        payload = lines.encode() + b"\n"
        check_lines(payload, rows)
        return LogBatch(int(first), int(last), int(rows), str(version), payload,
                        oldest, newest)

    def _read_sqlite(self, conn: Connection, cutoff: datetime, size: int,
                     after_id: int | None, upper: int, version: str) -> LogBatch | None:
        from opsctl.adapters.db import sqlite_lines  # it encodes with this module's rows

        if self._lines is None:
            self._lines = sqlite_lines.SqliteLines.of(conn, self._full_table(conn))
        c = self._lines.full.c
        condition = older_than(c.created_at, cutoff, sqlite=True) & (c.id <= upper)
        if after_id is not None:
            condition = condition & (c.id > after_id)
        found = sqlite_lines.read_lines(conn, self._lines, condition, size)
        if found is None:
            return None
        return LogBatch(found.first_id, found.last_id, found.rows, version, found.payload,
                        found.oldest, found.newest)

    def _full_table(self, conn: Connection) -> Table:
        if self._full is None:
            self._full = full_table(conn, self.table)
        return self._full


def full_table(conn: Connection, table: Table) -> Table:
    """The configured table plus every other column the database has, in table order."""
    known = {column.name: column for column in table.columns}
    reflected = inspect(conn).get_columns(table.name, schema=table.schema)
    columns = []
    for info in reflected:
        mine = known.get(info["name"])
        if mine is not None:
            columns.append(Column(mine.name, mine.type, key=mine.key))
        else:  # a column opsctl does not know: archived all the same
            columns.append(Column(info["name"], info["type"], key=f"_{info['name']}"))
    present = {column.name for column in columns}
    for key in ("id", "created_at"):
        name = table.c[key].name
        if name not in present:
            raise missing_column(name, conn.engine.url.render_as_string(hide_password=True))
    return Table(table.name, MetaData(), *columns, schema=table.schema)


def check_lines(payload: bytes, rows: int) -> None:
    found = payload.count(b"\n")
    if found != rows:
        raise OpsctlError(f"archive batch has {found} lines for {rows} rows; nothing deleted")
