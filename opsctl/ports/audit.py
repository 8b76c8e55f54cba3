"""``files audit``: the storage listing and the table's file paths, both in byte order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StoredFile:
    """A file in the storage, named as a row's ``file_path`` would name it."""

    key: str  # relative to the local root or the S3 prefix
    size: int
    modified: datetime  # mtime (local) or LastModified (S3), UTC


@dataclass(frozen=True)
class ReferencedPath:
    """One distinct ``file_path`` of the table; ``completed`` when a completed row has it."""

    path: str
    completed: bool


class StorageListing(Protocol):
    """Every stored file under the root or prefix, in UTF-8 byte order of the key, in
    constant memory. ``StorageUnavailable`` (exit 3) when the storage cannot be read."""

    where: str

    def files(self) -> Iterator[StoredFile]: ...


class ReferencedPaths(Protocol):
    def paths(self) -> Iterator[ReferencedPath]:
        """Distinct non-null ``file_path`` values in UTF-8 byte order, streamed; close the
        iterator when done."""


class FindingReport(Protocol):
    """Where ``--report`` sends one JSON object per finding."""

    def write(self, finding: Mapping[str, object]) -> None: ...

    def close(self) -> None:
        """Make the report visible whole (it appears at once, never half written)."""

    def discard(self) -> None:
        """Drop a report that was not closed (the run failed); a no-op after close."""
