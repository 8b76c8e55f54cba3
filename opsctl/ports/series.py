"""Metrics report: one row of numbers per period, read from stored rollups or computed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class PeriodTotals:
    """What the report shows of one period; the p95 is that of completed exports."""

    window_start: datetime
    total: int
    completed: int
    failed: int
    p95_duration_ms: float | None


class MetricSeriesSource(Protocol):
    def stored(self, period: str, start: datetime, end: datetime) -> list[PeriodTotals]:
        """Rollups of ``period`` stored by ``metrics aggregate --store`` that lie inside
        ``[start, end)``; none when opsctl's tables do not exist."""

    def computed(self, period: str, start: datetime, end: datetime) -> list[PeriodTotals]:
        """Every UTC hour or day (``hourly``, ``daily``) inside ``[start, end)`` that holds
        exports, counted from the source table in one grouped pass."""
