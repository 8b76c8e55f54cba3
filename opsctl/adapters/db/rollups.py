"""``RollupStore`` on ``opsctl_metric_rollups``.

One statement, ``INSERT ... ON CONFLICT (period, window_start, window_end) DO UPDATE``,
in each dialect's own spelling: a cron retry or a backfill of the same window replaces
the row atomically, where a select-then-insert would race a concurrent run into a
duplicate-key error.
"""

from __future__ import annotations

from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql, sqlite

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.ports import MetricRollup

_KEY = ("period", "window_start", "window_end")


class DbRollupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, rollup: MetricRollup) -> None:
        table = tables.metric_rollups
        values = {
            "period": rollup.period,
            "window_start": rollup.window_start,
            "window_end": rollup.window_end,
            "total_exports": rollup.total_exports,
            "failure_rate": rollup.failure_rate,
            "metrics": rollup.metrics,
            "computed_at": rollup.computed_at,
        }
        key = [table.c[name] for name in _KEY]
        replaced = [name for name in values if name not in _KEY]
        stmt: Executable
        if self.db.is_sqlite:
            lite = sqlite.insert(table).values(values)
            stmt = lite.on_conflict_do_update(
                index_elements=key, set_={name: lite.excluded[name] for name in replaced}
            )
        else:
            pg = postgresql.insert(table).values(values)
            stmt = pg.on_conflict_do_update(
                index_elements=key, set_={name: pg.excluded[name] for name in replaced}
            )
        with self.db.begin() as conn:
            conn.execute(stmt)
