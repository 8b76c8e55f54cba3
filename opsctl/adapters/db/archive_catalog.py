"""The archive catalog read back: ``opsctl_archive_objects`` rows as full object URIs.

A catalog row names its object by the archive root as configured (``uri``) and the key
below it; a reader may point at that root or at any directory or prefix below it, so a
row belongs to a listing when its full URI lies under the URI asked for. The catalog
holds one small row per object (a few thousand per year of cleanups), so the rows under
one URI are read in one query.
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, inspect, select

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.ports import CatalogEntry, CatalogRecord


def object_uri(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key.lstrip('/')}"


class DbArchiveCatalog:
    """``ArchiveCatalog`` over ``opsctl_archive_objects``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def entries(self, uri: str) -> list[CatalogEntry]:
        path = self.db.sqlite_path
        if path is not None and not path.exists():
            return []
        wanted = uri.rstrip("/")
        scheme = wanted.partition("://")[0]
        c = tables.archive_objects.c
        query = select(c.uri, c.key, c.source_table, c.first_id, c.last_id, c.rows, c.bytes,
                       c.sha256, c.min_created_at, c.max_created_at
                       ).where(c.uri.startswith(f"{scheme}://", autoescape=True))
        with self.db.connect() as conn:
            if not inspect(conn).has_table(tables.archive_objects.name):
                return []
            rows = conn.execute(query).all()
        found = []
        for row in rows:
            full = object_uri(row.uri, row.key)
            if full.startswith(wanted + "/"):
                found.append(CatalogEntry(full, row.source_table, int(row.first_id),
                                          int(row.last_id), int(row.rows), int(row.bytes),
                                          row.sha256, row.min_created_at, row.max_created_at))
        found.sort(key=lambda entry: entry.uri)
        return found


def catalogue(conn: Connection, record: CatalogRecord) -> None:
    """Record an object whose rows are gone, in the caller's transaction: the one that
    deletes (or drops) those rows, so the two commit together or not at all."""
    conn.execute(insert(tables.archive_objects).values(
        uri=record.uri, key=record.key, source_table=record.source_table,
        first_id=record.first_id, last_id=record.last_id, rows=record.rows,
        bytes=record.bytes, sha256=record.sha256, min_created_at=record.min_created_at,
        max_created_at=record.max_created_at, run_id=record.run_id,
        created_at=record.created_at))
