"""Files cleanup: the rows whose files expired, and the store that deletes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ExpiredExport:
    """One candidate of files cleanup: a row whose file may be deleted."""

    id: int
    export_id: str
    file_path: str
    file_size_bytes: int | None
    # Set when the row itself cannot be used (a ``file_path`` that is not valid text): the
    # row is reported and left as it is, and the run carries on with the others. Its
    # ``file_path`` is then a printable rendering, never a key to delete.
    unreadable: str | None = None
    # Where the walk resumes after this row, in the store's own terms (its ``expires_at``
    # as stored): handed back to ``ExpiredExports.batch``, never read by the job.
    position: object = field(default=None, compare=False)


@dataclass(frozen=True)
class FileOutcome:
    """What a file store did (or, in a dry run, would do) with one file.

    ``state`` is ``deleted``, ``missing`` (already gone: the row may still be marked
    expired) or ``failed`` (refused or not deletable: the row must stay as it is).
    ``size`` is the bytes freed: the row's ``file_size_bytes``, else the file's real size.
    """

    export: ExpiredExport
    state: str
    size: int = 0
    error_kind: str | None = None
    error_message: str | None = None


class ExpiredExports(Protocol):
    """The rows files cleanup walks, in ``(expires_at, id)`` order, and marks ``expired``."""

    def count(self, now: datetime) -> int:
        """How many rows are candidates at ``now`` (for the summary and the progress bar)."""

    def batch(self, now: datetime, after: ExpiredExport | None, size: int) -> list[ExpiredExport]:
        """The next ``size`` candidates after ``after`` (a row of the previous batch; from
        the first when None), in ``(expires_at, id)`` order: the order of the rows' expiry,
        so a walk can stop at ``now`` instead of reading every row not yet due."""

    def mark_expired(self, ids: list[int]) -> int:
        """Set these rows' status to ``expired`` in one short transaction."""


class FileStore(Protocol):
    """Where export files live. Works on chunks so S3 can delete 1000 keys per request.

    Per-file problems come back as ``failed`` outcomes; only a store that cannot be reached
    at all raises ``StorageUnavailable``, and then nothing of that chunk was done.
    """

    backend: str
    max_chunk: int

    def delete(self, files: list[ExpiredExport]) -> list[FileOutcome]: ...

    def check(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        """What ``delete`` would do, touching nothing (dry run)."""
