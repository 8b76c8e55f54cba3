"""The deletion guard as the cleanup jobs call it: judge, report a trip, honour --force.

The decision itself is pure (:mod:`opsctl.domain.deletion_guard`); this module feeds it
the run history and turns a trip into the ``deletion_guard_tripped`` event. A job calls
:func:`check` with the count it already has, before its first delete or archive write, in
a dry run too, and on a trip returns its summary with nothing done and exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opsctl.domain.deletion_guard import BASELINE_RUNS, GuardLimits, GuardTrip, judge
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports.guard import DeletionHistory

TRIPPED_EVENT = "deletion_guard_tripped"
TRIPPED_STATE = "guard_tripped"


@dataclass(frozen=True)
class DeletionGuard:
    limits: GuardLimits
    history: DeletionHistory | None = None
    force: bool = False
    # The summary fields whose sum is "what a run deleted", for the anomaly baseline.
    baseline_fields: Sequence[str] = ("deleted_count",)


def check(ctx: JobContext, guard: DeletionGuard | None, would_delete: int, *,
          table_rows: Callable[[], int] | None = None) -> GuardTrip | None:
    """The trip (already reported) that forbids this run to delete, or None."""
    if guard is None or guard.force:
        return None
    history = guard.history

    def baseline() -> list[int]:
        if history is None:
            return []
        return history.recent_counts(ctx.job, guard.baseline_fields, BASELINE_RUNS)

    trip = judge(would_delete, guard.limits, table_rows=table_rows, baseline=baseline)
    if trip is not None:
        ctx.emitter.emit(TRIPPED_EVENT, trip.message, level="error",
                         limit_kind=trip.limit_kind, would_delete=trip.would_delete,
                         limit=trip.limit, dry_run=ctx.dry_run)
    return trip


def forced(guard: DeletionGuard | None) -> bool:
    return guard is not None and guard.force


def tripped(result: JobResult, trip: GuardTrip, guard: DeletionGuard | None, *,
            zeroed: Sequence[str], left: str | None = None) -> JobResult:
    """A job's summary turned into the summary of a run the guard stopped: the counts of
    what it would have done are zero, ``left`` holds everything it left in place."""
    fields = dict(result.fields)
    for name in zeroed:
        fields[name] = 0
    if left is not None:
        fields[left] = trip.would_delete
    fields["forced"] = forced(guard)
    return JobResult(result.summary_type, trip.message, TRIPPED_STATE, ExitCode.CRITICAL,
                     fields, result.extra)


def with_forced(result: JobResult, guard: DeletionGuard | None) -> JobResult:
    """The summary of a guarded run says whether the guard was skipped (``--force``)."""
    if guard is not None:
        result.fields["forced"] = forced(guard)
    return result
