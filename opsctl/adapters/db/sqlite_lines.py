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
    text,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import Boolean, String

from opsctl.adapters.db.instants import older_than
from opsctl.adapters.db.log_lines import encode_row
from opsctl.adapters.db.types import UtcDateTime
from opsctl.errors import OpsctlError

# Rows per statement when reading rows back by id (SQLite's variable limit).
_IDS_PER_STATEMENT = 500
_MICROSECONDS = "'." + "[0-9]" * 6 + "'"


def _affinity(declared: str) -> str:
    """SQLite's column affinity for a declared type (its rules, in its order)."""
    upper = declared.upper()
    if "INT" in upper:
        return "integer"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if not upper or "BLOB" in upper:
        return "blob"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


def _stored_instant(name: str) -> str:
    """True for ``YYYY-MM-DD HH:MM:SS.ffffff`` of a real date and time, as opsctl stores
    them: ``datetime`` writes that layout back only for a valid date and time (NULL, or
    another day, for anything else, a number too)."""
    return (f"length({name}) = 26 AND datetime({name}) = substr({name}, 1, 19) AND "
            f"substr({name}, 20) GLOB {_MICROSECONDS}")


class SqliteLines:
    """The line of each row of ``full`` (the table with every column) as SQL.

    Two versions: ``fast_line`` leaves out the checks that cannot fail on a column's
    affinity (a TEXT column holds no REAL) and lets a BLOB fail the statement (callers
    then take the row-by-row path); ``line`` checks everything, for that path.
    """

    def __init__(self, full: Table, affinities: dict[str, str]) -> None:
        from sqlalchemy.dialects import sqlite

        dialect = sqlite.dialect()
        quote = dialect.identifier_preparer.quote
        self.full = full
        self.names = [column.name for column in full.columns]
        self.encodable = True
        fast: list[str] = []
        strict: list[str] = []
        pairs: list[str] = []
        # Plain SQL text: constants inline, not a few dozen bound parameters per statement.
        for column in full.columns:
            name = quote(column.name)
            if isinstance(column.type, UtcDateTime):
                fast.append(f"({name} IS NULL OR ({_stored_instant(name)}))")
                strict.append(f"({name} IS NULL OR (typeof({name}) = 'text' AND "
                              f"{_stored_instant(name)}))")
                # The stored instant with a T, no trailing zeros in the fraction, a zone.
                value = f"rtrim(rtrim(replace({name}, ' ', 'T'), '0'), '.') || '+00:00'"
            elif column.type.dialect_impl(dialect).result_processor(dialect, None) is None:
                if affinities.get(column.name, "blob") != "text":
                    fast.append(f"typeof({name}) <> 'real'")
                # Two comparisons: measured twice as fast as ``NOT IN ('real', 'blob')``.
                strict.append(f"typeof({name}) <> 'real' AND typeof({name}) <> 'blob'")
                value = name
            else:
                self.encodable = False
                value = name
            pairs.append("'" + column.name.replace("'", "''") + "', " + value)
        json = "json_object(" + ", ".join(pairs) + ")"
        exact = " AND ".join(strict)
        # True when SQLite's line for the row is the one Python would write.
        self.exact = literal_column(exact, Boolean)
        self.json = literal_column(json, String)
        # NULL where Python must write the line; every row through Python when a column's
        # values are converted on the way out.
        self.line = _line(exact, json, self.encodable)
        self.fast_line = _line(" AND ".join(fast) or "1", json, self.encodable)

    @classmethod
    def of(cls, conn: Connection, full: Table) -> SqliteLines:
        """The lines of ``full``, with the affinities its columns were declared with."""
        pragma = "pragma_table_xinfo(:table" + (", :schema)" if full.schema else ")")
        declared = conn.execute(text(f"SELECT name, type FROM {pragma}"),
                                {"table": full.name, "schema": full.schema})
        return cls(full, {name: _affinity(kind or "") for name, kind in declared})

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


def _line(exact: str, json: str, encodable: bool) -> Any:
    if not encodable:
        return literal_column("NULL", String)
    return literal_column(f"CASE WHEN {exact} THEN {json} END", String)


def _holds_a_blob(error: DBAPIError) -> bool:
    """``json_object`` refused a BLOB: the row-by-row path encodes it in Python."""
    return "BLOB" in str(error.orig)


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
                    lines.fast_line.label("line"))
             .where(condition).order_by(c.id).limit(size).subquery())
    # The subquery's rows reach the aggregate in its id order.
    query = select(func.count(), func.min(batch.c.id), func.max(batch.c.id),
                   func.min(batch.c.at), func.max(batch.c.at), func.count(batch.c.line),
                   func.group_concat(batch.c.line, "\n"))
    try:
        rows, first, last, oldest, newest, encoded, joined = conn.execute(query).one()
    except DBAPIError as error:
        if not _holds_a_blob(error):
            raise
        return _read_rows(conn, lines, condition, size)
    if not rows:
        return None
    if encoded != rows:
        return _read_rows(conn, lines, condition, size)
    payload = (joined + "\n").encode()
    # Stored instants sort as text in time order: only the two ends are parsed.
    return Lines(int(first), int(last), int(rows), payload, _utc(oldest), _utc(newest))


def _read_rows(conn: Connection, lines: SqliteLines, condition: Any, size: int) -> Lines:
    """``read_lines`` row by row, rows SQLite cannot encode exactly encoded in Python."""
    c = lines.full.c
    query = (select(c.id, type_coerce(c.created_at, String), lines.line)
             .where(condition).order_by(c.id).limit(size))
    rows = conn.execute(query).all()
    ids = [int(row[0]) for row in rows]
    texts: list[str | None] = [row[2] for row in rows]
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
    batch = (select(c.id.label("id"), lines.fast_line.label("line")).where(in_range)
             .order_by(c.id).subquery())
    query = select(func.count(), func.count(batch.c.line),
                   func.group_concat(batch.c.line, "\n"))
    try:
        rows, encoded, joined = conn.execute(query).one()
    except DBAPIError as error:
        if not _holds_a_blob(error):
            raise
        rows, encoded = 0, -1
    if rows and encoded == rows:
        payload = (joined + "\n").encode()
        deleted = int(conn.execute(delete(lines.full).where(in_range)).rowcount or 0)
        if deleted == rows:
            return deleted, payload
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
