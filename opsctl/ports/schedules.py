"""What ``schedule show`` and ``status`` read: each job's last runs, its lock, the pending work.

One snapshot, read on one connection: an on-call screen whose numbers come from different
moments would contradict itself (a job "running" and "overdue" at once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RunBrief:
    """One recorded run, as much of it as the on-call screen shows."""

    started_at: datetime
    finished_at: datetime
    state: str
    exit_code: int
    error: dict[str, str] | None = None


@dataclass(frozen=True)
class JobHistory:
    job: str
    last_run: RunBrief | None = None
    last_success: RunBrief | None = None  # latest finished run that exited 0, 1 or 2
    # The latest start of a successful run among those finished at or after the ``since``
    # asked for: exact for "has it succeeded since T" even when runs overlapped.
    success_started_since: datetime | None = None
    running: bool = False  # its lock is held right now


@dataclass(frozen=True)
class FailedRun:
    job: str
    run: RunBrief


@dataclass(frozen=True)
class OpenAlert:
    name: str
    opened_at: datetime | None
    last_notified_at: datetime | None
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class HistorySnapshot:
    """Run history as the dead man's switch needs it; ``tables_created_at`` is None when
    opsctl's tables do not exist (an empty history)."""

    tables_created_at: datetime | None
    jobs: Mapping[str, JobHistory]
    failed_runs: Sequence[FailedRun] = ()


@dataclass(frozen=True)
class PendingWork:
    """The source table as on-call sees it: last hour's outcomes and cleanups waiting."""

    completed: int
    failed: int
    pending_log_rows: int
    pending_files: int


class ScheduleHistory(Protocol):
    def snapshot(
        self,
        jobs: Sequence[str],
        success_codes: frozenset[int],
        success_since: Mapping[str, datetime],
        *,
        failed_runs: int = 0,
    ) -> HistorySnapshot:
        """Each job's last run, last success, success started since ``success_since[job]``
        and lock state; plus the latest ``failed_runs`` runs that did not succeed."""


class StatusSource(ScheduleHistory, Protocol):
    def open_alerts(self) -> list[OpenAlert]: ...

    def pending(self, since: datetime, now: datetime, log_cutoff: datetime) -> PendingWork:
        """Outcomes of exports created in ``[since, now)``, log rows created before
        ``log_cutoff`` and files whose ``expires_at`` passed before ``now``."""
