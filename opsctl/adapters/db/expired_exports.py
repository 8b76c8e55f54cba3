"""The rows of files cleanup: exports whose ``expires_at`` has passed and whose file is
still there to delete.

Rows are walked by keyset (``id > last ORDER BY id LIMIT n``), never by OFFSET, so each
batch costs the same on a table of millions, and every statement is its own short
transaction: the application writing the table never waits on a cleanup for long.

A row whose text cannot be decoded (SQLite stores whatever bytes it is given, and
``CAST(X'FFFE2E6A736F6E' AS TEXT)`` is not UTF-8) must not stop the run: on SQLite the
text columns are read as bytes and decoded here, and such a row comes back marked
``unreadable`` for the job to report and leave alone. Decoded by the driver, one such row
failed every batch it was in, on every run.

On SQLite ``expires_at`` is compared as an instant, never as text alone (the rule of
``instants``): a row is due when its value sorts before the cutoff as text *and*, if it is
a timestamp, ``julianday()`` puts it before the cutoff. A value that is no timestamp (an
integer epoch, garbage text) and sorts before the cutoff is what a text comparison would
have judged expired: it comes back ``unreadable`` too, reported and never deleted. A
timestamp with an offset or a ``T`` is due at its real instant, never earlier.

The connection, though, is kept for the whole run. The engine does not pool (NullPool),
and a connection per statement cost more than the deletes themselves: a TCP connect and
authentication on PostgreSQL, and on SQLite a WAL checkpoint each time the last
connection closes.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    LargeBinary,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from opsctl.adapters.db.database import Database, RunConnection
from opsctl.adapters.db.instants import not_comparable
from opsctl.adapters.db.tables import source_table
from opsctl.ports import ExpiredExport

if TYPE_CHECKING:
    from opsctl.settings.data import SourceSettings

EXPIRED = "expired"


class ExpiredExportsRepository:
    """``ExpiredExports`` on the configured source table (columns remapped as configured)."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())
        self._run = RunConnection(db)

    def __enter__(self) -> ExpiredExportsRepository:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._run.close()

    def _candidates(self, now: datetime) -> ColumnElement[bool]:
        c = self.table.c
        return and_(
            self._due(now),
            c.status != EXPIRED,
            c.file_path.is_not(None),
            c.file_path != "",
        )

    def _due(self, now: datetime) -> ColumnElement[bool]:
        """``expires_at < now`` as instants, plus on SQLite the values that are no
        timestamp but sort before ``now`` (to be reported): ``older_than`` or a poison row
        below the cutoff, with the text comparison kept outermost for the index."""
        expires_at = self.table.c.expires_at
        if not self.db.is_sqlite:
            return expires_at < now
        cutoff = literal(now, expires_at.type)
        return and_(expires_at < cutoff,
                    or_(not_comparable(expires_at),
                        func.julianday(expires_at) < func.julianday(cutoff)))

    def count(self, now: datetime) -> int:
        query = select(func.count()).select_from(self.table).where(self._candidates(now))
        with self._run.transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def batch(self, now: datetime, after_id: int | None, size: int) -> list[ExpiredExport]:
        c = self.table.c
        if self.db.is_sqlite:
            export_id: ColumnElement[Any] = cast(c.export_id, LargeBinary)
            file_path: ColumnElement[Any] = cast(c.file_path, LargeBinary)
            # What ``expires_at`` holds when it is no timestamp, else NULL.
            poison: ColumnElement[Any] = case(
                (func.typeof(c.expires_at) != "text", func.typeof(c.expires_at)),
                (func.julianday(c.expires_at).is_(None), "text"))
        else:
            export_id, file_path = c.export_id, c.file_path
            poison = null()  # timestamptz: every value is an instant
        query = (
            select(c.id, export_id, file_path, c.file_size_bytes, poison)
            .where(self._candidates(now))
            .order_by(c.id)
            .limit(size)
        )
        if after_id is not None:
            query = query.where(c.id > after_id)
        with self._run.transaction() as conn:
            rows: list[Any] = list(conn.execute(query))
        return [_export(*row) for row in rows]

    def mark_expired(self, ids: list[int]) -> int:
        if not ids:
            return 0
        c = self.table.c
        # One array parameter on PostgreSQL: an expanded IN of 500 parameters cost the
        # client nearly three times the UPDATE itself.
        in_batch = (c.id.in_(ids) if self.db.is_sqlite
                    else c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger))))
        statement = update(self.table).where(in_batch, c.status != EXPIRED).values(
            status=EXPIRED)
        with self._run.transaction() as conn:
            if not self.db.is_sqlite:
                # No WAL flush wait per batch. A crash may forget the last marks, but their
                # files are gone: the next run finds them missing and marks them again.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return int(conn.execute(statement).rowcount or 0)


def _export(id_: Any, export_id: Any, path: Any, size_bytes: Any,
            poison: str | None) -> ExpiredExport:
    size = None if size_bytes is None else int(size_bytes)
    if isinstance(path, str) and isinstance(export_id, str):  # PostgreSQL: decoded already
        return ExpiredExport(int(id_), export_id, path, size)
    export_text, export_bad = _decoded(export_id)
    path_text, path_bad = _decoded(path)
    problem = None
    if path_bad or export_bad:
        column = "file_path" if path_bad else "export_id"
        problem = f"row id {int(id_)}: {column} is not valid UTF-8 text; row left as it is"
    elif poison is not None:
        what = ("text that is not a timestamp" if poison == "text"
                else f"{poison}, not a timestamp")
        problem = f"row id {int(id_)}: expires_at is {what}; row left as it is"
    return ExpiredExport(int(id_), export_text, path_text, size, unreadable=problem)


def _decoded(value: Any) -> tuple[str, bool]:
    """The text of a column read as bytes, and whether it was not valid UTF-8 (then a
    printable rendering with ``\\x..`` escapes)."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace"), True
    return str(value), False
