"""The small interfaces jobs talk to; adapters implement them, tests fake them in memory.

Each port is a few methods wide on purpose: a job that needs more is asking the adapter to
carry domain logic that belongs in the job.
"""

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


class Progress(Protocol):
    """Progress of long work, for a person at a terminal; a no-op everywhere else."""

    def advance(self, amount: int = 1) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int | None, unit: str) -> Progress: ...


class NoProgress:
    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(description: str, total: int | None, unit: str) -> Progress:
    return NoProgress()
