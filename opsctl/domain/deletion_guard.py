"""The deletion guard: whether a run may delete what it found eligible.

A cleanup that runs unattended deletes whatever its query returns, so a clock that jumped
ahead, a retention typed as 3 instead of 30 or a table restored from an old backup would
be obeyed without a second look. The guard is that second look, decided on counts the job
has before its first delete or archive write:

- ``max_delete`` always applies (0 means "delete nothing": any eligible item trips it);
- above ``guard_min`` items, two relative limits apply too: ``max_delete_fraction`` of
  every row of the table (logs only) and ``anomaly_factor`` times the median of the job's
  last successful runs, once there are at least :data:`MIN_BASELINE_RUNS` of them.

Below ``guard_min`` the relative limits stay quiet: a small table or a quiet week would
otherwise trip them on harmless counts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MIN_BASELINE_RUNS = 3
BASELINE_RUNS = 10


@dataclass(frozen=True)
class GuardLimits:
    max_delete: int | None = None
    guard_min: int = 10_000
    max_delete_fraction: float | None = None  # logs cleanup only
    anomaly_factor: float = 10.0


@dataclass(frozen=True)
class GuardTrip:
    """Why a run must not delete: ``limit_kind`` is ``max_delete``,
    ``max_delete_fraction`` or ``anomaly``; ``limit`` the largest count that would pass."""

    limit_kind: str
    would_delete: int
    limit: int
    detail: str

    @property
    def message(self) -> str:
        return (f"deletion guard tripped ({self.limit_kind}): would delete "
                f"{self.would_delete:,}, limit {self.limit:,} ({self.detail}); nothing deleted")


def judge(
    would_delete: int,
    limits: GuardLimits,
    *,
    table_rows: Callable[[], int] | None = None,
    baseline: Callable[[], Sequence[int]] | None = None,
) -> GuardTrip | None:
    """The first limit ``would_delete`` exceeds, or None when the run may go ahead.

    ``table_rows`` and ``baseline`` are asked only when their limit can apply (above
    ``guard_min``), so a routine run never pays for the queries behind them.
    """
    if limits.max_delete is not None and would_delete > limits.max_delete:
        detail = ("max_delete = 0 deletes nothing" if limits.max_delete == 0
                  else f"max_delete = {limits.max_delete:,}")
        return GuardTrip("max_delete", would_delete, limits.max_delete, detail)
    if would_delete <= limits.guard_min:
        return None
    if limits.max_delete_fraction is not None and table_rows is not None:
        total = table_rows()
        limit = math.floor(limits.max_delete_fraction * total)
        if would_delete > limit:
            return GuardTrip("max_delete_fraction", would_delete, limit,
                             f"{limits.max_delete_fraction:g} of the table's {total:,} rows")
    if baseline is not None:
        counts = list(baseline())[:BASELINE_RUNS]
        if len(counts) >= MIN_BASELINE_RUNS:
            median = statistics.median(counts)
            limit = math.floor(limits.anomaly_factor * median)
            if would_delete > limit:
                return GuardTrip(
                    "anomaly", would_delete, limit,
                    f"{limits.anomaly_factor:g} x the median {median:g} of the last "
                    f"{len(counts)} successful runs")
    return None
