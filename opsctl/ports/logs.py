"""Logs stats and cleanup: old rows in batches, and the archive they go to first."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PoisonRow:
    """A row whose ``created_at`` cannot be compared with a cutoff (an integer, a blob,
    text that is no timestamp): it is reported and never deleted, whatever it holds."""

    id: Any
    value: str  # the stored value as an SQL literal, for the report
    reason: str


@dataclass(frozen=True)
class LogTableStats:
    total_rows: int
    eligible: int  # rows with created_at before the cutoff
    oldest_created_at: datetime | None
    newest_created_at: datetime | None
    poison: Sequence[PoisonRow] = field(default_factory=tuple)


class LogStatsSource(Protocol):
    def stats(self, cutoff: datetime) -> LogTableStats:
        """Counts and bounds of the export log table, read in one snapshot."""


@dataclass(frozen=True)
class LogBatch:
    """Eligible rows ``first_id`` .. ``last_id`` as JSON lines, one row per line.

    ``version`` identifies the exact versions of the rows that were read (on PostgreSQL
    their physical row versions; on SQLite, whose rows have none, the database's commit
    count as the run saw it before the read, the lines then standing for the rows), so the
    delete can remove them only if they are still those versions: a row changed, added or
    removed since the read makes the delete remove nothing.
    """

    first_id: int
    last_id: int
    rows: int
    version: str
    payload: bytes
    min_created_at: datetime | None = None
    max_created_at: datetime | None = None


@dataclass(frozen=True)
class CatalogRecord:
    """One row of the archive catalog: an object whose rows are gone from the table."""

    uri: str  # the archive root as configured (canonical form)
    key: str  # the object's name below it: ``<table>/<name>``
    source_table: str
    first_id: int
    last_id: int
    rows: int
    bytes: int
    sha256: str
    min_created_at: datetime | None
    max_created_at: datetime | None
    run_id: str
    created_at: datetime


@dataclass(frozen=True)
class Settlement:
    """What finishing an earlier run's object did: ``deleted`` rows removed (and the object
    catalogued), or nothing at all when ``stale`` names rows that changed since."""

    deleted: int
    stale: Sequence[Any]


class OldLogs(Protocol):
    """The rows ``logs cleanup`` removes: created before a cutoff, walked by id."""

    def count_eligible(self, cutoff: datetime) -> int: ...

    def poison_rows(self, cutoff: datetime) -> Sequence[PoisonRow]:
        """Rows that might be older than the cutoff but whose ``created_at`` is no
        comparable timestamp; they are never in a batch."""

    def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
        """Delete eligible rows ``size`` at a time, without archive, yielding the count of
        each batch; nothing is in flight at a yield. Close the generator when done."""

    def batches(
        self, cutoff: datetime, size: int, after_id: int | None = None
    ) -> Generator[LogBatch, None, None]:
        """Eligible rows in id order, ``size`` per batch; close the generator when done."""

    def delete_batch(self, batch: LogBatch, cutoff: datetime, record: CatalogRecord) -> bool:
        """Delete exactly the batch's rows, in the versions that were read, and catalogue
        ``record``, in one transaction; False (nothing deleted, nothing catalogued) when
        any row in its id range changed, appeared or went since the read."""

    def settle_archived(self, rows: Mapping[int, Mapping[str, Any]], cutoff: datetime,
                        record: CatalogRecord) -> Settlement:
        """Finish an object an earlier run wrote: in one transaction, delete the rows whose
        content still equals their archived line and whose ``created_at`` is before the
        cutoff, and catalogue ``record``; rows already gone are fine. When any row is
        still there in another version (or newer than the cutoff) nothing is done."""

    def is_catalogued(self, uri: str, key: str) -> bool: ...


class HeldBatch(Protocol):
    """A batch whose rows are deleted in a transaction still open: nobody else sees them
    gone, and nothing is durable, until ``commit``."""

    batch: LogBatch  # exactly the rows the open transaction deleted

    def commit(self, record: CatalogRecord) -> None:
        """Catalogue ``record`` and commit the delete with it, synchronously."""

    def release(self) -> None:
        """Roll the delete back (the rows stay); never raises."""


class HeldLogs(Protocol):
    """PostgreSQL's archive path: each batch deleted first, in a transaction held open
    until its object is written and verified, so the lines archived are exactly the rows
    deleted and the delete becomes real only once the object is safe."""

    def spans(self, cutoff: datetime, size: int) -> Generator[tuple[int | None, int], None, None]:
        """``(after_id, last_id)`` of each batch of ``size`` eligible rows, in id order,
        computed one at a time; close the generator when done."""

    def take(self, cutoff: datetime, after_id: int | None, last_id: int) -> HeldBatch | None:
        """Delete the eligible rows with ``after_id < id <= last_id`` in a transaction left
        open; None (nothing held) when none is left. Each calling thread has a
        connection of its own and holds at most one batch at a time."""


@dataclass(frozen=True)
class ArchivedObject:
    name: str
    uri: str
    bytes: int  # compressed size as stored
    sha256: str  # of the stored (compressed) bytes


@dataclass(frozen=True)
class StagedObject:
    """An object compressed (and, on disk, written and flushed under a temporary name)
    but not yet created under its name: staging the next batch's object while the
    current batch is deleted overlaps the two. Only ``publish`` makes it an object."""

    payload: bytes  # the lines, to compare with an object already there
    data: bytes  # the gzip bytes
    sha256: str  # of ``data``
    path: str | None = None  # the temporary file holding ``data``, where there is one


class LogArchive(Protocol):
    """Where archive objects go: gzip-compressed, created exclusively, read back to verify.

    Every failure to reach or write the archive raises ``ArchiveUnavailable`` (exit 3).
    """

    uri: str

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        """Compress ``payload`` and create ``name``; never replaces an object. An existing
        object with the same content is fine; a different one raises
        ``ArchiveUnavailable``. The same as ``publish(name, stage(payload))``."""

    def stage(self, payload: bytes) -> StagedObject:
        """Prepare ``payload``'s object without creating it (safe on a worker thread, one
        stage at a time, at most two staged objects unpublished)."""

    def publish(self, name: str, staged: StagedObject) -> ArchivedObject:
        """Create ``name`` from a staged object, exactly as ``write`` would."""

    def discard(self, staged: StagedObject) -> None:
        """Forget a staged object that will not be published."""

    def verify(self, written: ArchivedObject) -> None:
        """Read the object back; raise ``ArchiveUnavailable`` unless size and sha256 match."""

    def read(self, name: str) -> tuple[bytes, ArchivedObject] | None:
        """The decompressed content of ``name`` and what is stored; None when absent."""

    def remove(self, name: str) -> None:
        """Delete ``name`` if it exists."""

    def write_marker(self, content: bytes) -> None:
        """Store the in-flight marker (plain JSON), replacing the previous one."""

    def read_marker(self) -> bytes | None:
        """The in-flight marker, or an earlier version's one; None when there is none."""

    def remove_marker(self) -> None:
        """Remove the in-flight marker (and an earlier version's one)."""
