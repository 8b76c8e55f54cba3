"""The deletion guard's one outside input: what the job deleted in its recent runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class DeletionHistory(Protocol):
    """Counts from the summaries of a job's recent successful runs (run history)."""

    def recent_counts(self, job: str, fields: Sequence[str], limit: int) -> list[int]:
        """The sum of ``fields`` in each of the job's last ``limit`` successful runs,
        newest first; an absent history is an empty list."""
