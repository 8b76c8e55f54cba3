"""Reading archives back: the objects under an archive URI and the catalog that vouches
for them (``logs verify``, ``logs restore``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    """One object found under an archive URI."""

    uri: str  # the object's full URI: file:///dir/table/name, s3://bucket/prefix/name
    key: str  # its name below the URI that was listed
    size: int


@dataclass(frozen=True)
class CatalogEntry:
    """One row of ``opsctl_archive_objects``: a verified object whose rows were deleted."""

    uri: str  # the object's full URI (the catalog's root URI joined with its key)
    source_table: str
    first_id: int
    last_id: int
    rows: int
    bytes: int
    sha256: str
    min_created_at: datetime | None
    max_created_at: datetime | None


class ArchiveObjects(Protocol):
    """The objects under one archive URI, read back. Failing to reach the archive raises
    ``ArchiveUnavailable`` (exit 3); an absent directory or prefix is simply empty."""

    uri: str
    parallel_reads: int  # how many objects are worth reading at once

    def listing(self) -> Iterator[StoredObject]:
        """Every object under the URI, any ending, in key order."""

    def chunks(self, obj: StoredObject) -> Iterator[bytes]:
        """The object's stored (compressed) bytes, a chunk at a time; close when done."""


class ArchiveCatalog(Protocol):
    def entries(self, uri: str) -> list[CatalogEntry]:
        """Catalogued objects at or below ``uri``, in URI order; none without the table."""
