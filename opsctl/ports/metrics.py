"""Metrics aggregate: one window's aggregate and the rollup table it is stored in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from opsctl.ports.alerts import ErrorTypeCount


@dataclass(frozen=True)
class FormatAggregate:
    """One export format's rows in a window, as the database counted them.

    Durations and file sizes are those of *completed* exports only (a failed export's
    duration measures how long it took to fail, and it leaves no file); the ``*_count``
    fields say how many of them had a value, so averages divide by the right number.
    """

    format: str
    total: int
    completed: int
    failed: int
    duration_count: int
    duration_sum: int
    p95_duration_ms: float | None
    file_size_count: int
    file_size_sum: int


@dataclass(frozen=True)
class WindowAggregate:
    """Everything ``metrics aggregate`` needs from one window; rates are the job's to make."""

    formats: tuple[FormatAggregate, ...]
    p50_duration_ms: float | None
    p95_duration_ms: float | None
    p99_duration_ms: float | None
    top_error_types: tuple[ErrorTypeCount, ...] = ()


class MetricsSource(Protocol):
    def aggregate(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        """Exports created in ``[start, end)``: per-format counts and sums, PostgreSQL
        ``percentile_cont`` durations of completed exports (overall p50/p95/p99, p95 per
        format), and the ``top`` error types of failed exports (count desc, then name)."""


@dataclass(frozen=True)
class MetricRollup:
    """One row of ``opsctl_metric_rollups``; (period, window_start, window_end) is its key."""

    period: str
    window_start: datetime
    window_end: datetime
    total_exports: int
    failure_rate: float | None
    metrics: dict[str, Any]
    computed_at: datetime


class RollupStore(Protocol):
    def upsert(self, rollup: MetricRollup) -> None:
        """Insert the rollup, or replace the one with the same key: reruns never duplicate."""
