"""The rows of files cleanup: exports whose ``expires_at`` has passed and whose file is
still there to delete.

Rows are walked in ``(expires_at, id)`` order by keyset (``(expires_at, id) > (last_e,
last_id) AND expires_at < cutoff ORDER BY expires_at, id LIMIT n``), never by OFFSET and
never by ``id`` alone. With the partial index ``ix_<table>_expires_pending`` on
``(expires_at, id)`` (``tables.source_indexes``), whose predicate is the candidates' own,
the count and every batch are range scans that start at the last row handled and stop at
the cutoff: the cost follows the due rows, not the days of exports still waiting. Walked
by id, each batch and the count read the whole index, due or not (0.7 s at 10M rows with
nothing due). Without the index the same statements still work, by a scan of the table.
Every statement is its own short transaction: the application writing the table never
waits on a cleanup for long.

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
timestamp with an offset or a ``T`` is due at its real instant, never earlier. There the
walk resumes from the stored value itself, read back as SQLite holds it (an integer, a
real, or the bytes of the text), so a poison row is passed once, like any other, and text
that is not UTF-8 never has to be decoded to be walked past.

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
    Select,
    Table,
    Text,
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
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.types import NullType

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

    def count_query(self, now: datetime) -> Select[Any]:
        """The count's statement (also for EXPLAIN): a range scan of the pending index."""
        return select(func.count()).select_from(self.table).where(self._candidates(now))

    def count(self, now: datetime) -> int:
        with self._run.transaction() as conn:
            if not self.db.is_sqlite:
                # The planner cannot know that rows not yet expired are mostly not due
                # (status and expires_at are correlated), so at 10M rows it counted a
                # range of 0 rows with two parallel workers: 15 ms to launch them, against
                # 0.1 ms for the scan itself.
                conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
            return int(conn.execute(self.count_query(now)).scalar_one())

    def batch_query(self, now: datetime, after: ExpiredExport | None,
                    size: int) -> Select[Any]:
        """A batch's statement (also for EXPLAIN): the pending index read from the last
        row handled, in its own order, up to ``size`` rows or the cutoff."""
        c = self.table.c
        if self.db.is_sqlite:
            export_id: ColumnElement[Any] = cast(c.export_id, LargeBinary)
            file_path: ColumnElement[Any] = cast(c.file_path, LargeBinary)
            # What ``expires_at`` holds when it is no timestamp, else NULL.
            poison: ColumnElement[Any] = case(
                (func.typeof(c.expires_at) != "text", func.typeof(c.expires_at)),
                (func.julianday(c.expires_at).is_(None), "text"))
            # The stored value untouched: a number as it is, text as its bytes (which
            # need not be UTF-8), so the keyset compares exactly what the ORDER BY did.
            position: ColumnElement[Any] = type_coerce(
                case((func.typeof(c.expires_at) == "text", cast(c.expires_at, LargeBinary)),
                     else_=c.expires_at), NullType())
        else:
            export_id, file_path = c.export_id, c.file_path
            poison = null()  # timestamptz: every value is an instant
            position = c.expires_at
        query = (
            select(c.id, export_id, file_path, c.file_size_bytes, poison, position)
            .where(self._candidates(now))
            .order_by(c.expires_at, c.id)
            .limit(size)
        )
        if after is not None:
            query = query.where(tuple_(c.expires_at, c.id)
                                > tuple_(self._stored(after.position), literal(after.id)))
        return query

    def batch(self, now: datetime, after: ExpiredExport | None,
              size: int) -> list[ExpiredExport]:
        query = self.batch_query(now, after, size)
        with self._run.transaction() as conn:
            rows: list[Any] = list(conn.execute(query))
        return [_export(*row) for row in rows]

    def _stored(self, position: object) -> ColumnElement[Any]:
        """A row's ``expires_at`` as a bind parameter of the stored value's own kind."""
        if not self.db.is_sqlite:
            return literal(position, self.table.c.expires_at.type)
        if isinstance(position, bytes):  # text on SQLite: the same bytes, typed text again
            return cast(literal(position, LargeBinary), Text)
        return literal(position, NullType())

    def mark_expired(self, ids: list[int]) -> int:
        if not ids:
            return 0
        c = self.table.c
        if self.db.is_sqlite:
            in_batch: ColumnElement[bool] = c.id.in_(ids)
        else:
            # Imported here: a SQLite run has no use for the PostgreSQL dialect.
            from sqlalchemy.dialects.postgresql import ARRAY

            # One array parameter on PostgreSQL: an expanded IN of 500 parameters cost the
            # client nearly three times the UPDATE itself.
            in_batch = c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
        statement = update(self.table).where(in_batch, c.status != EXPIRED).values(
            status=EXPIRED)
        with self._run.transaction() as conn:
            if not self.db.is_sqlite:
                # No WAL flush wait per batch. A crash may forget the last marks, but their
                # files are gone: the next run finds them missing and marks them again.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return int(conn.execute(statement).rowcount or 0)


def _export(id_: Any, export_id: Any, path: Any, size_bytes: Any,
            poison: str | None, position: object) -> ExpiredExport:
    size = None if size_bytes is None else int(size_bytes)
    if isinstance(path, str) and isinstance(export_id, str):  # PostgreSQL: decoded already
        return ExpiredExport(int(id_), export_id, path, size, position=position)
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
    return ExpiredExport(int(id_), export_text, path_text, size, unreadable=problem,
                         position=position)


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
