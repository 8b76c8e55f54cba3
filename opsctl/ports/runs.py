"""opsctl's own run history: what the runner records and what ``runs`` reads back."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class RunRecord:
    """One finished job run, as kept in ``opsctl_runs``."""

    job: str
    run_id: str
    host: str
    started_at: datetime
    finished_at: datetime
    state: str
    exit_code: int
    duration_ms: int
    summary: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None


class RunBookkeeping(Protocol):
    """What the job runner needs around every job: schema, lock, history."""

    def ensure_schema(self) -> None:
        """Create or upgrade opsctl's own tables (idempotent)."""

    def job_lock(self, job: str) -> AbstractContextManager[None]:
        """Hold the job's lock for the run; raise ``LockHeld`` when another run has it."""

    def record_run(self, run: RunRecord) -> None: ...

    def prune_runs(self, older_than: datetime) -> int:
        """Delete run history older than ``older_than``; return how many rows went."""


@dataclass(frozen=True)
class JobRunTotals:
    """One job's runs over a window, aggregated by the run history.

    ``failed`` counts runs whose exit code is not among the caller's success codes, so what
    "failed" means is decided by the job, not by the database adapter.
    """

    job: str
    runs: int
    failed: int
    avg_duration_ms: float | None
    p95_duration_ms: float | None
    last_run_at: datetime
    last_state: str
    last_exit_code: int
    last_success_at: datetime | None
    consecutive_failures: int


class RunHistory(Protocol):
    """Read side of ``opsctl_runs``; an absent table is an empty history, not an error."""

    def recent_runs(
        self, *, job: str | None, since: datetime | None, limit: int
    ) -> list[RunRecord]:
        """Runs finished at or after ``since``, newest first, at most ``limit``."""

    def job_totals(self, since: datetime, success_exit_codes: frozenset[int]) -> list[JobRunTotals]:
        """Per job with a run finished at or after ``since``, ordered by job name."""
