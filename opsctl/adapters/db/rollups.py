"""``RollupStore`` on ``opsctl_metric_rollups``.

One statement, ``INSERT ... ON CONFLICT (period, window_start, window_end) DO UPDATE``,
in each dialect's own spelling: a cron retry or a backfill of the same window replaces
the row atomically, where a select-then-insert would race a concurrent run into a
duplicate-key error. A backfill sends its periods as one executemany in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, select

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.ports import MetricRollup

_KEY = ("period", "window_start", "window_end")
_COLUMNS = (*_KEY, "total_exports", "failure_rate", "metrics", "computed_at")
PERIOD_LENGTH = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}


class DbRollupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, rollup: MetricRollup) -> None:
        self.upsert_many([rollup])

    def upsert_many(self, rollups: Sequence[MetricRollup]) -> None:
        """Every rollup in one transaction, one executemany of the upsert statement."""
        if not rollups:
            return
        with self.db.begin() as conn:
            conn.execute(self._statement(), [_values(rollup) for rollup in rollups])

    def stored(self, period: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
        c = tables.metric_rollups.c
        query = select(c.window_start, c.window_end, c.metrics).where(
            c.period == period, c.window_start >= start, c.window_start < end
        )
        length = PERIOD_LENGTH.get(period)
        with self.db.connect() as conn:
            return {
                window_start: metrics
                for window_start, window_end, metrics in conn.execute(query)
                if window_end - window_start == length
            }

    def _statement(self) -> Executable:
        table = tables.metric_rollups
        key = [table.c[name] for name in _KEY]
        replaced = [name for name in _COLUMNS if name not in _KEY]
        # Each dialect's module is imported only on its own backend.
        if self.db.is_sqlite:
            from sqlalchemy.dialects import sqlite

            lite = sqlite.insert(table)
            return lite.on_conflict_do_update(
                index_elements=key, set_={name: lite.excluded[name] for name in replaced}
            )
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(
            index_elements=key, set_={name: pg.excluded[name] for name in replaced}
        )


def _values(rollup: MetricRollup) -> dict[str, Any]:
    return {
        "period": rollup.period,
        "window_start": rollup.window_start,
        "window_end": rollup.window_end,
        "total_exports": rollup.total_exports,
        "failure_rate": rollup.failure_rate,
        "metrics": rollup.metrics,
        "computed_at": rollup.computed_at,
    }
