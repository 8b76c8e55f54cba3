"""The table's ``file_path`` values for ``files audit``, streamed in UTF-8 byte order.

One ordered scan: ``ORDER BY file_path COLLATE "C"`` on PostgreSQL (byte order whatever
the database's collation), the default ``BINARY`` collation on SQLite (memcmp of UTF-8,
the same order), read through a server-side cursor a few thousand rows at a time. Rows
sharing a path arrive next to each other and are folded into one here, so memory stays
constant however large the table is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import Table, literal_column, select

from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.tables import source_table
from opsctl.ports import ReferencedPath

if TYPE_CHECKING:
    from opsctl.settings.data import SourceSettings

_FETCH = 5000


class FileReferences:
    """``ReferencedPaths`` over the configured source table."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())

    def paths(self) -> Iterator[ReferencedPath]:
        c = self.table.c
        collation = "BINARY" if self.db.is_sqlite else '"C"'
        ordered = c.file_path.collate(collation) if self.db.is_sqlite else literal_column(
            f'{_quoted(c.file_path.name)} COLLATE {collation}')
        query = (select(c.file_path, c.status == "completed")
                 .where(c.file_path.is_not(None)).order_by(ordered))
        with translate_errors(self.db), self.db.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_FETCH).execute(
                query)
            path: str | None = None
            completed = False
            for value, done in result:
                if value != path:
                    if path is not None:
                        yield ReferencedPath(path, completed)
                    path, completed = value, bool(done)
                else:
                    completed = completed or bool(done)
            if path is not None:
                yield ReferencedPath(path, completed)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
