"""Comparing a stored ``created_at`` with a cutoff as instants, on every backend.

PostgreSQL stores ``timestamptz``, so ``created_at < cutoff`` compares instants. SQLite
has no timestamp type: a column holds whatever was written, and ``<`` compares by storage
class, then as text. An integer epoch is "less" than any text, so it would always look old,
and ``2026-10-27 05:32:46-08:00`` (13:32 UTC) sorts before ``2026-10-27 11:08:50``. A delete
must never be widened by a format, so on SQLite a row is older than the cutoff only when

- its value is text (integers, reals and blobs are never compared),
- it sorts before the cutoff as text (the stored format ``YYYY-MM-DD HH:MM:SS.ffffff``
  sorts in time order; this keeps the ``created_at`` index usable), and
- ``julianday()`` reads it as an instant before the cutoff (a zone offset is applied;
  text that is no timestamp gives NULL, which is never older).

Each condition can only narrow the others. A value that fails the first or the last is a
*poison row*: reported, never deleted, never read as a timestamp.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_


def older_than(column: Any, cutoff: Any, *, sqlite: bool) -> Any:
    """``column < cutoff`` as instants; ``cutoff`` a bind parameter or value of the column's
    type (so SQLite receives it in the stored format)."""
    if isinstance(cutoff, datetime):
        cutoff = literal(cutoff, column.type)
    if not sqlite:
        return column < cutoff
    return and_(func.typeof(column) == "text", column < cutoff,
                func.julianday(column) < func.julianday(cutoff))


def not_comparable(column: Any) -> Any:
    """SQLite: the values ``older_than`` never treats as timestamps (poison rows)."""
    return or_(func.typeof(column) != "text", func.julianday(column).is_(None))
