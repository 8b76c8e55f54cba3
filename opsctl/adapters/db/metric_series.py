"""``MetricSeriesSource``: the per-period numbers of ``metrics report``.

Stored rollups come from ``opsctl_metric_rollups`` (absent tables mean none, and an
embedded database not created yet means no rollups and no exports). Periods
without a rollup are counted from the source table in one grouped statement over the
whole stretch they span, never one query per period: on PostgreSQL ``GROUP BY`` the epoch
bucket with a filtered ``percentile_cont`` for the p95; on SQLite, which has no
percentile function, one grouped count and one stream of completed durations sorted by
(period, duration) feeding a :class:`PercentilePicker` per period, both in one read
transaction so the stream holds exactly the counted rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    inspect,
    select,
)

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.source_schema import require_table
from opsctl.domain.stats import PercentilePicker
from opsctl.ports import PeriodTotals

COMPLETED, FAILED = "completed", "failed"
P95 = 0.95
_SECONDS = {"hourly": 3600, "daily": 86400}
# SQLite stores UTC timestamps as ISO text: the hour or the day is a prefix of it.
_PREFIX = {"hourly": 13, "daily": 10}
STREAM_BATCH = 10_000


class DbMetricSeries:
    def __init__(self, db: Database, table: str, columns: Mapping[str, str]) -> None:
        self.db = db
        self.table = tables.source_table(table, columns)

    def stored(self, period: str, start: datetime, end: datetime) -> list[PeriodTotals]:
        r = tables.metric_rollups
        query = (
            select(r.c.window_start, r.c.total_exports, r.c.metrics)
            .where(r.c.period == period, r.c.window_start >= start, r.c.window_end <= end)
            .order_by(r.c.window_start)
        )
        if self.db.not_created:
            return []
        with self.db.connect() as conn:
            if not inspect(conn).has_table(r.name):
                return []
            return [_from_rollup(start_at, total, metrics)
                    for start_at, total, metrics in conn.execute(query)]

    def computed(self, period: str, start: datetime, end: datetime) -> list[PeriodTotals]:
        if self.db.not_created:
            return []  # no database yet: no exports, every period is empty
        with self.db.connect() as conn:
            require_table(conn, self.table, self.db.safe_url)
            if self.db.is_sqlite:
                return list(self._sqlite(conn, period, start, end))
            return [
                PeriodTotals(datetime.fromtimestamp(float(bucket) * _SECONDS[period], UTC),
                             int(total), int(completed), int(failed),
                             None if p95 is None else float(p95))
                for bucket, total, completed, failed, p95 in conn.execute(
                    self.grouped_query(period, start, end))
            ]

    # --- the statements (public so the benchmark can hand the same SQL to psql) ----------

    def grouped_query(self, period: str, start: datetime, end: datetime) -> Any:
        """PostgreSQL: per period, the counts and the p95 of completed durations."""
        c = self.table.c
        bucket = func.floor(extract("epoch", c.created_at) / _SECONDS[period]).label("bucket")
        done = c.status == COMPLETED
        return (
            select(
                bucket,
                func.count(),
                func.count().filter(done),
                func.count().filter(c.status == FAILED),
                func.percentile_cont(P95).within_group(c.duration_ms).filter(
                    and_(done, c.duration_ms.is_not(None))),
            )
            .where(self._window(start, end))
            .group_by(bucket)
            .order_by(bucket)
        )

    def _window(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        c = self.table.c
        return and_(c.created_at >= start, c.created_at < end)

    def _sqlite(
        self, conn: Connection, period: str, start: datetime, end: datetime
    ) -> Iterator[PeriodTotals]:
        c = self.table.c
        bucket = func.substr(c.created_at, 1, _PREFIX[period]).label("bucket")
        done = c.status == COMPLETED

        def tally(condition: ColumnElement[bool]) -> Any:
            return func.sum(cast(case((condition, 1), else_=0), Integer))

        counts = (
            select(bucket, func.count(), tally(done), tally(c.status == FAILED),
                   tally(and_(done, c.duration_ms.is_not(None))))
            .where(self._window(start, end))
            .group_by(bucket)
            .order_by(bucket)
        )
        durations = (
            select(bucket, c.duration_ms)
            .where(self._window(start, end), done, c.duration_ms.is_not(None))
            .order_by(bucket, c.duration_ms)
        )
        conn.exec_driver_sql("BEGIN")  # one snapshot for the counts and the stream
        periods = [(str(key), int(n), int(ok or 0), int(bad or 0), int(timed or 0))
                   for key, n, ok, bad, timed in conn.execute(counts)]
        stream = conn.execution_options(yield_per=STREAM_BATCH).execute(durations)
        values = (row for batch in stream.partitions() for row in batch)
        pending = next(values, None)
        for key, total, completed, failed, timed in periods:
            picker = PercentilePicker(timed, (P95,))
            while pending is not None and pending[0] == key:
                picker.feed(float(pending[1]))
                pending = next(values, None)
            yield PeriodTotals(_bucket_start(key), total, completed, failed, picker.result()[P95])


def _bucket_start(key: str) -> datetime:
    """``2026-11-20 10`` (or ``2026-11-20T10``) and ``2026-11-20`` as UTC datetimes."""
    day, _, hour = key.replace("T", " ").partition(" ")
    moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return moment + timedelta(hours=int(hour)) if hour else moment


def _from_rollup(start: datetime, total: int, metrics: dict[str, Any]) -> PeriodTotals:
    p95 = metrics.get("p95_duration_ms")
    return PeriodTotals(start, int(total), int(metrics.get("completed") or 0),
                        int(metrics.get("failed") or 0), None if p95 is None else float(p95))
