"""SQLite: archive lines built by SQLite's own ``json_object``, byte for byte the lines
``log_lines.encode_row`` builds in Python (and PostgreSQL's ``row_to_json``).

Fetching every column into Python and encoding it there cost about 60 µs a row, twice
(the read, then the delete that re-encodes what it removes): 500,000 rows took 50 s,
eleven times the sqlite3 CLI writing the same lines. SQLite writes them at a few µs a row.

The two writers agree because SQLite escapes text exactly as Python's ``json.dumps``
(``ensure_ascii=False``) and PostgreSQL do, and writes integers and NULL alike. Where they
would differ, SQLite does not write the line:

- a column whose type converts values on the way into Python (a boolean, a decimal, a date,
  JSON, a timestamp that is not opsctl's own) makes the whole table go through Python;
- a value stored as a REAL or a BLOB (SQLite's dynamic typing allows one in any column), or
  a timestamp not in the exact stored format ``YYYY-MM-DD HH:MM:SS.ffffff`` of a real date
  and time, leaves that row's line NULL, and that row alone is encoded in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    delete,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.types import Boolean, String

from opsctl.adapters.db.instants import older_than
from opsctl.adapters.db.log_lines import encode_row
from opsctl.adapters.db.types import UtcDateTime
from opsctl.errors import OpsctlError

# Rows per statement when reading rows back by id (SQLite's variable limit).
_IDS_PER_STATEMENT = 500
_DIGITS = "[0-9]"
_STORED_INSTANT = (f"{_DIGITS * 4}-{_DIGITS * 2}-{_DIGITS * 2} "
                   f"{_DIGITS * 2}:{_DIGITS * 2}:{_DIGITS * 2}.{_DIGITS * 6}")


class SqliteLines:
    """The line of each row of ``full`` (the table with every column) as SQL."""

    def __init__(self, full: Table) -> None:
        from sqlalchemy.dialects import sqlite

        dialect = sqlite.dialect()
        quote = dialect.identifier_preparer.quote
        self.full = full
        self.names = [column.name for column in full.columns]
        self.encodable = True
        checks: list[str] = []
        pairs: list[str] = []
        # Plain SQL text: constants inline, not a few dozen bound parameters per statement.
        for column in full.columns:
            name = quote(column.name)
            if isinstance(column.type, UtcDateTime):
                checks.append(
                    f"({name} IS NULL OR (typeof({name}) = 'text' AND {name} GLOB "
                    f"'{_STORED_INSTANT}' AND date({name}) = substr({name}, 1, 10) AND "
                    f"time({name}) = substr({name}, 12, 8)))")
                value = _json_instant(name)
            elif column.type.dialect_impl(dialect).result_processor(dialect, None) is None:
                # Two comparisons: measured twice as fast as ``NOT IN ('real', 'blob')``.
                checks.append(f"typeof({name}) <> 'real' AND typeof({name}) <> 'blob'")
                value = name
            else:
                self.encodable = False
                value = name
            pairs.append("'" + column.name.replace("'", "''") + "', " + value)
        json = "json_object(" + ", ".join(pairs) + ")"
        exact = " AND ".join(checks)
        # True when SQLite's line for the row is the one Python would write.
        self.exact = literal_column(exact, Boolean)
        self.json = literal_column(json, String)
        # Empty where Python must write the line (never a real line: those are objects).
        # Every row through Python when a column's values are converted on the way out.
        self.line = (literal_column(f"CASE WHEN {exact} THEN {json} ELSE '' END", String)
                     if self.encodable else literal_column("''", String))

    def python_lines(self, conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, datetime]]:
        """The lines (and ``created_at``) of these rows as Python encodes them."""
        c = self.full.c
        id_index = self.names.index(c.id.name)
        at_index = self.names.index(c.created_at.name)
        found: dict[int, tuple[str, datetime]] = {}
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = list(ids[start:start + _IDS_PER_STATEMENT])
            for row in conn.execute(select(*self.full.columns).where(c.id.in_(chunk))):
                found[int(row[id_index])] = (_python_line(self.names, row),
                                             row[at_index])
        return found


def _json_instant(name: str) -> str:
    """``2026-09-01 08:00:00.500000`` as ``2026-09-01T08:00:00.5+00:00`` (NULL stays NULL)."""
    fraction = f"substr({name}, 21, 6)"
    return (f"substr({name}, 1, 10) || 'T' || substr({name}, 12, 8) || CASE {fraction} "
            f"WHEN '000000' THEN '' ELSE '.' || rtrim({fraction}, '0') END || '+00:00'")


@dataclass(frozen=True)
class Lines:
    """Rows ``first_id`` .. ``last_id`` as the body of an archive object."""

    first_id: int
    last_id: int
    rows: int
    payload: bytes
    oldest: datetime
    newest: datetime


def read_lines(conn: Connection, lines: SqliteLines, condition: Any, size: int) -> Lines | None:
    """The first ``size`` rows meeting ``condition``, in id order; None when no row does.

    One aggregate row comes back, not one row per line: fetching 5,000 rows into Python
    cost more than SQLite writing their JSON. Rows SQLite cannot encode exactly send the
    batch through ``_read_rows``."""
    c = lines.full.c
    batch = (select(c.id.label("id"), type_coerce(c.created_at, String).label("at"),
                    lines.line.label("line"))
             .where(condition).order_by(c.id).limit(size).subquery())
    # The subquery's rows reach the aggregate in its id order.
    # ``line`` named once: SQLite copies the subquery's expression to each use.
    query = select(func.count(), func.min(batch.c.id), func.max(batch.c.id),
                   func.min(batch.c.at), func.max(batch.c.at),
                   func.group_concat(batch.c.line, "\n"))
    rows, first, last, oldest, newest, text = conn.execute(query).one()
    if not rows:
        return None
    if not _all_encoded(text):
        return _read_rows(conn, lines, condition, size)
    # Stored instants sort as text in time order: only the two ends are parsed.
    return Lines(int(first), int(last), int(rows), (text + "\n").encode(), _utc(oldest),
                 _utc(newest))


def _read_rows(conn: Connection, lines: SqliteLines, condition: Any, size: int) -> Lines:
    """``read_lines`` row by row, rows SQLite cannot encode exactly encoded in Python."""
    c = lines.full.c
    query = (select(c.id, type_coerce(c.created_at, String), lines.line)
             .where(condition).order_by(c.id).limit(size))
    rows = conn.execute(query).all()
    ids = [int(row[0]) for row in rows]
    texts: list[str | None] = [row[2] or None for row in rows]
    stamps = [_utc(row[1]) for row, text in zip(rows, texts, strict=True) if text is not None]
    missing = [row_id for row_id, text in zip(ids, texts, strict=True) if text is None]
    python = lines.python_lines(conn, missing)
    for index, row_id in enumerate(ids):
        if texts[index] is None:
            texts[index], at = python[row_id]
            stamps.append(at)
    return Lines(ids[0], ids[-1], len(ids), payload_of([t for t in texts if t is not None]),
                 min(stamps), max(stamps))


def delete_range(conn: Connection, lines: SqliteLines, first_id: int, last_id: int,
                 cutoff: datetime) -> tuple[int, bytes]:
    """Delete the eligible rows ``first_id`` .. ``last_id``: how many, and their lines.

    The caller holds SQLite's write lock (its transaction has written already), so the
    rows read here are the rows the delete removes."""
    c = lines.full.c
    in_range = and_(c.id >= first_id, c.id <= last_id,
                    older_than(c.created_at, cutoff, sqlite=True))
    batch = (select(c.id.label("id"), lines.line.label("line")).where(in_range)
             .order_by(c.id).subquery())
    query = select(func.count(), func.group_concat(batch.c.line, "\n"))
    rows, text = conn.execute(query).one()
    if rows and _all_encoded(text):
        deleted = int(conn.execute(delete(lines.full).where(in_range)).rowcount or 0)
        if deleted == rows:
            return deleted, (text + "\n").encode()
        raise OpsctlError(f"deleted {deleted} rows where {rows} were read; rolled back")
    texts = delete_lines(conn, lines, first_id, last_id, cutoff)
    return len(texts), payload_of(texts)


def delete_lines(conn: Connection, lines: SqliteLines, first_id: int, last_id: int,
                 cutoff: datetime) -> list[str]:
    """Delete the eligible rows ``first_id`` .. ``last_id``; their lines in id order.

    Two deletes in one transaction: the rows SQLite encodes, then the rest (encoded in
    Python). Nothing can change between them: the first took the write lock."""
    c = lines.full.c
    in_range = and_(c.id >= first_id, c.id <= last_id,
                    older_than(c.created_at, cutoff, sqlite=True))
    gone: dict[int, str] = {}
    if lines.encodable:
        fast = delete(lines.full).where(in_range, lines.exact).returning(c.id, lines.json)
        gone.update((int(row_id), text) for row_id, text in conn.execute(fast))
    rest = delete(lines.full).where(in_range).returning(*lines.full.columns)
    id_index = lines.names.index(c.id.name)
    for row in conn.execute(rest):
        gone[int(row[id_index])] = _python_line(lines.names, row)
    return [gone[row_id] for row_id in sorted(gone)]


def payload_of(texts: list[str]) -> bytes:
    """The object body: one line per row, each ending in a newline."""
    return ("\n".join(texts) + "\n").encode() if texts else b""


def _utc(stored: str) -> datetime:
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _python_line(names: list[str], row: Any) -> str:
    return encode_row(names, tuple(row))[:-1].decode()  # without its newline


def _all_encoded(text: str) -> bool:
    """Whether every line of a ``group_concat`` is SQLite's (none is empty)."""
    return bool(text) and not (text[0] == "\n" or text[-1] == "\n" or "\n\n" in text)
