"""Metrics backfill: many consecutive periods aggregated at once, and the rollups already
stored for them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from opsctl.ports.metrics import MetricRollup, WindowAggregate


class PeriodMetricsSource(Protocol):
    def aggregate_periods(
        self, start: datetime, end: datetime, length: timedelta, top: int
    ) -> Iterator[tuple[datetime, WindowAggregate]]:
        """``(period_start, aggregate)`` for every period ``[start + k*length, +length)``
        of ``[start, end)`` that holds at least one export, each aggregate equal to what
        ``MetricsSource.aggregate`` returns for that period alone; periods without exports
        are left out (the caller knows they are empty)."""


class StoredRollups(Protocol):
    def stored(self, period: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
        """The ``metrics`` of every stored ``period`` rollup starting in ``[start, end)``
        and one period long, by window start."""

    def upsert_many(self, rollups: Sequence[MetricRollup]) -> None:
        """Insert or replace every rollup, all in one transaction."""
