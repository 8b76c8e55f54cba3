"""Things that watch a run from outside: heartbeats, Prometheus metrics.

The job runner calls them, and only the runner: ``run_started`` once the lock is held,
``run_ended`` with the outcome just before the run's last line is written (so the end ping
can carry that line, and any event an observer emits still comes before it). No job
module knows they exist. Dry runs and runs skipped by the lock notify nothing.

An observer must never change the exit code cron acts on, nor hold the exit up for longer
than its own timeout: it catches its own failures and reports them as warning events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from opsctl.exit_codes import JOB_SUCCEEDED


@dataclass(frozen=True)
class RunStart:
    job: str
    run_id: str
    host: str
    started_at: datetime


@dataclass(frozen=True)
class RunEnd:
    """How a run ended. ``event`` is the run's last line (summary or ``error``) with its
    common fields, secrets already scrubbed; ``details`` holds what the summary event does
    not (the health probe's checks)."""

    job: str
    run_id: str
    host: str
    started_at: datetime
    finished_at: datetime
    state: str
    exit_code: int
    event: Mapping[str, Any]
    details: Mapping[str, Any] = field(default_factory=dict)
    # The run found opsctl's database unreachable: an observer must not wait on it again.
    database_down: bool = False

    @property
    def succeeded(self) -> bool:
        """The job did its work and judged it (0, 1, 2), the rule of ``runs stats``."""
        return self.exit_code in JOB_SUCCEEDED

    @property
    def duration_s(self) -> float:
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


class RunObserver(Protocol):
    def run_started(self, run: RunStart) -> None: ...

    def run_ended(self, run: RunEnd) -> None: ...
