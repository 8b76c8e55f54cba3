"""Demo seed: where generated rows and files go."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import NamedTuple, Protocol


class ExportRow(NamedTuple):
    """One row of the monitored export table, by contract column (``id`` is the database's)."""

    export_id: str
    user_id: str
    format: str
    status: str
    conversation_count: int
    duration_ms: int | None
    file_size_bytes: int | None
    file_path: str | None
    error_type: str | None
    error_message: str | None
    created_at: datetime
    expires_at: datetime | None


class ExportRowSink(Protocol):
    """The open side of a seeding transaction: rows written here commit together."""

    @property
    def removed(self) -> int:
        """Rows deleted before the first write because truncation was asked for."""

    def write(self, rows: Sequence[ExportRow]) -> None: ...


class ExportTableSeeder(Protocol):
    """Bulk-fills the export table with generated rows (``demo seed``)."""

    def row_count(self) -> int | None:
        """Rows in the table now; None when the table does not exist yet."""

    def seeding(self, *, truncate: bool) -> AbstractContextManager[ExportRowSink]:
        """Create the table when missing, optionally empty it, and hold one transaction."""


class ExportFileWriter(Protocol):
    """Puts export files under the storage root, keyed like ``file_path``."""

    @property
    def location(self) -> str:
        """Where the files go, for people reading the summary."""

    def write(self, key: str, data: bytes) -> None: ...
