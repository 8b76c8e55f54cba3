"""``PeriodMetricsSource``: the aggregates of many consecutive periods in one pass.

PostgreSQL answers with one statement: the window's rows are bucketed with ``date_bin``
(aligned on the window start, so hours and UTC days) and grouped by ``GROUPING SETS``
of (period, format, status, error type) for the counts and sums, (period, format) for each
format's p95 and (period) for the overall percentiles, all with the ``percentile_cont``
the single-window query uses. ``GROUPING()`` tells the three kinds of rows apart (a format
may itself be NULL). A backfill of 1,440 hours is then one scan of the ``created_at``
range and a few small sorts per period, instead of 1,440 round trips.

SQLite has no ``percentile_cont`` and no grouping sets. It streams the window once in
``created_at`` order, so each period's rows arrive together; the counts are summed as
they pass and the completed durations of one period at a time are sorted in Python for
the same interpolation (:mod:`opsctl.domain.stats`), so memory holds one period, not the
window.

Both paths fold the counts through the single-window adapter's tally, so the numbers are
those ``metrics aggregate`` gives for each period alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Float, case, func, literal_column, select, tuple_, type_coerce

from opsctl.adapters.db.metrics import (
    COMPLETED,
    FAILED,
    FORMAT_QUANTILE,
    QUANTILES,
    STREAM_BATCH,
    UNKNOWN,
    AnySelect,
    DbMetricsSource,
    _Tally,
)
from opsctl.domain.stats import percentile_cont
from opsctl.ports import WindowAggregate

# GROUPING(format, status, error): which columns a row's grouping set left out.
_FINE, _BY_FORMAT, _BY_PERIOD = 0, 0b011, 0b111
_FORMAT_P95 = QUANTILES.index(FORMAT_QUANTILE)


class DbPeriodMetrics(DbMetricsSource):
    """The single-window source's table and filters, over a series of periods."""

    def aggregate_periods(
        self, start: datetime, end: datetime, length: timedelta, top: int
    ) -> Iterator[tuple[datetime, WindowAggregate]]:
        self._require_table()
        if self.db.is_sqlite:
            return iter(self._sqlite_periods(start, end, length, top))
        return iter(self._postgres_periods(start, end, length, top))

    def periods_query(self, start: datetime, end: datetime, length: timedelta) -> AnySelect:
        """PostgreSQL: one statement for every period (public so benchmarks hand the same
        SQL to psql)."""
        c = self.table.c
        error = case(
            (c.status == literal_column(f"'{FAILED}'"),
             func.coalesce(c.error_type, literal_column(f"'{UNKNOWN}'"))),
            else_=None,
        )
        rows = (
            select(
                func.date_bin(length, c.created_at, start).label("period_start"),
                c.format.label("format"),
                c.status.label("status"),
                error.label("error"),
                c.duration_ms.label("duration_ms"),
                c.file_size_bytes.label("file_size_bytes"),
            )
            .where(self._in_window(start, end))
            .subquery("w")
        )
        r = rows.c
        completed_durations = (r.status == literal_column(f"'{COMPLETED}'")) & (
            r.duration_ms.is_not(None)
        )
        fractions: Any = literal_column(
            "ARRAY[" + ", ".join(repr(float(q)) for q in QUANTILES) + "]"
        )
        percentiles = type_coerce(
            func.percentile_cont(fractions).within_group(r.duration_ms)
            .filter(completed_durations),
            ARRAY(Float),
        )
        return select(
            r.period_start,
            func.grouping(r.format, r.status, r.error),
            r.format,
            r.status,
            r.error,
            func.count(),
            func.count(r.duration_ms),
            func.sum(r.duration_ms),
            func.count(r.file_size_bytes),
            func.sum(r.file_size_bytes),
            percentiles,
        ).group_by(
            func.grouping_sets(
                tuple_(r.period_start, r.format, r.status, r.error),
                tuple_(r.period_start, r.format),
                tuple_(r.period_start),
            )
        )

    # --- PostgreSQL ---------------------------------------------------------------------

    def _postgres_periods(
        self, start: datetime, end: datetime, length: timedelta, top: int
    ) -> list[tuple[datetime, WindowAggregate]]:
        periods: dict[datetime, _Period] = {}
        with self.db.connect() as conn:
            # fetchall, not row-by-row iteration: a 60-day hourly backfill returns ~25k rows
            result = conn.execute(self.periods_query(start, end, length)).all()
            for (period_start, level, fmt, status, error, n, d_count, d_sum, s_count, s_sum,
                 quantiles) in result:
                period = periods.setdefault(_utc(period_start), _Period())
                if level == _FINE:
                    period.rows.append((fmt, status, error, n, d_count, d_sum, s_count, s_sum))
                elif level == _BY_FORMAT:
                    period.format_p95[fmt] = quantiles[_FORMAT_P95] if quantiles else None
                elif level == _BY_PERIOD:
                    period.quantiles = tuple(quantiles) if quantiles else (None, None, None)
        return [(moment, period.aggregate(top)) for moment, period in sorted(periods.items())]

    # --- SQLite -------------------------------------------------------------------------

    def _sqlite_periods(
        self, start: datetime, end: datetime, length: timedelta, top: int
    ) -> list[tuple[datetime, WindowAggregate]]:
        c = self.table.c
        query = (
            select(c.created_at, c.format, c.status, c.error_type, c.duration_ms,
                   c.file_size_bytes)
            .where(self._in_window(start, end))
            .order_by(c.created_at)
        )
        out: list[tuple[datetime, WindowAggregate]] = []
        current: _Stream | None = None
        with self.db.connect() as conn:
            conn.exec_driver_sql("BEGIN")  # one snapshot for the whole stream
            result = conn.execution_options(yield_per=STREAM_BATCH).execute(query)
            for batch in result.partitions():
                for created_at, fmt, status, error_type, duration, size in batch:
                    moment = start + ((created_at - start) // length) * length
                    if current is None or current.start != moment:
                        if current is not None:
                            out.append((current.start, current.aggregate(top)))
                        current = _Stream(moment)
                    current.add(fmt, status, error_type, duration, size)
        if current is not None:
            out.append((current.start, current.aggregate(top)))
        return out


@dataclass
class _Period:
    """One period's rows of the grouped PostgreSQL statement."""

    rows: list[Any] = field(default_factory=list)
    format_p95: dict[str | None, float | None] = field(default_factory=dict)
    quantiles: tuple[float | None, ...] = (None, None, None)

    def aggregate(self, top: int) -> WindowAggregate:
        tally = _Tally.of(self.rows)
        p50, p95, p99 = self.quantiles
        return WindowAggregate(
            formats=tally.aggregates(self.format_p95),
            p50_duration_ms=p50,
            p95_duration_ms=p95,
            p99_duration_ms=p99,
            top_error_types=tally.top_errors(top),
        )


@dataclass
class _Stream:
    """One period's rows as SQLite streams them: grouped counts and sums, and the
    completed durations per format, the only values kept."""

    start: datetime
    groups: dict[tuple[str | None, str, str | None], list[int]] = field(default_factory=dict)
    durations: dict[str | None, list[float]] = field(default_factory=dict)

    def add(self, fmt: str | None, status: str, error_type: str | None,
            duration: int | None, size: int | None) -> None:
        error = (error_type if error_type is not None else UNKNOWN) if status == FAILED else None
        sums = self.groups.setdefault((fmt, status, error), [0, 0, 0, 0, 0])
        sums[0] += 1
        if duration is not None:
            sums[1] += 1
            sums[2] += duration
            if status == COMPLETED:
                self.durations.setdefault(fmt, []).append(float(duration))
        if size is not None:
            sums[3] += 1
            sums[4] += size

    def aggregate(self, top: int) -> WindowAggregate:
        rows: list[Any] = [
            (fmt, status, error, *sums) for (fmt, status, error), sums in self.groups.items()
        ]
        tally = _Tally.of(rows)
        everything: list[float] = []
        format_p95: dict[str | None, float | None] = {}
        for fmt, values in self.durations.items():
            values.sort()
            format_p95[fmt] = percentile_cont(values, FORMAT_QUANTILE)
            everything.extend(values)
        everything.sort()
        p50, p95, p99 = (percentile_cont(everything, q) for q in QUANTILES)
        return WindowAggregate(
            formats=tally.aggregates(format_p95),
            p50_duration_ms=p50,
            p95_duration_ms=p95,
            p99_duration_ms=p99,
            top_error_types=tally.top_errors(top),
        )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
