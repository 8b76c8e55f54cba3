"""Logs stats and cleanup: old rows in batches, and the archive they go to first."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class LogTableStats:
    total_rows: int
    eligible: int  # rows with created_at before the cutoff
    oldest_created_at: datetime | None
    newest_created_at: datetime | None


class LogStatsSource(Protocol):
    def stats(self, cutoff: datetime) -> LogTableStats:
        """Counts and bounds of the export log table, read in one snapshot."""


@dataclass(frozen=True)
class LogBatch:
    """Eligible rows ``first_id`` .. ``last_id`` as JSON lines, one row per line.

    ``rows`` and ``id_sum`` identify the set of rows, so the delete can check that it
    removes exactly the rows that were archived and nothing that appeared since.
    """

    first_id: int
    last_id: int
    rows: int
    id_sum: int
    payload: bytes


class OldLogs(Protocol):
    """The rows ``logs cleanup`` removes: created before a cutoff, walked by id."""

    def count_eligible(self, cutoff: datetime) -> int: ...

    def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
        """Delete eligible rows ``size`` at a time, without archive, yielding the count of
        each batch; nothing is in flight at a yield. Close the generator when done."""

    def batches(
        self, cutoff: datetime, size: int, after_id: int | None = None
    ) -> Generator[LogBatch, None, None]:
        """Eligible rows in id order, ``size`` per batch; close the generator when done."""

    def delete_batch(self, batch: LogBatch, cutoff: datetime) -> bool:
        """Delete exactly the batch's rows in one transaction; False (nothing deleted) when
        the rows in its id range changed since it was read."""

    def delete_ids(self, ids: Sequence[int]) -> int:
        """Delete these rows (what a killed run had archived); return how many were there."""


@dataclass(frozen=True)
class ArchivedObject:
    name: str
    uri: str
    bytes: int  # compressed size as stored
    sha256: str  # of the stored (compressed) bytes


class LogArchive(Protocol):
    """Where archive objects go: gzip-compressed, written atomically, read back to verify.

    Every failure to reach or write the archive raises ``ArchiveUnavailable`` (exit 3).
    """

    uri: str

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        """Compress ``payload`` and store it as ``name``, replacing any object of that name."""

    def verify(self, written: ArchivedObject) -> None:
        """Read the object back; raise ``ArchiveUnavailable`` unless size and sha256 match."""

    def read(self, name: str) -> bytes | None:
        """The decompressed content of ``name``; None when there is no such object."""

    def remove(self, name: str) -> None:
        """Delete ``name`` if it exists."""
