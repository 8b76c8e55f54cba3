"""``MetricsSource`` on the configured source table: counts, sums and exact percentiles of
one window, computed where the rows are.

Every total and the error ranking come from one scan grouped by (format, status, error
type): a few dozen rows reach Python whatever the window holds, and ranking the error
types here breaks ties by code point on both backends, which SQL ``ORDER BY`` would leave
to the database's locale.

PostgreSQL computes every percentile with ``percentile_cont`` and no duration ever reaches
Python. Its ordered-set aggregates get no parallel plan, so the statements are overlapped
from the client on separate pooled connections sharing one snapshot
(:mod:`~opsctl.adapters.db.parallel_queries`): the breakdown and the overall percentiles at
once, then, as soon as the breakdown names the formats, each format's p95 as one filtered
aggregate per format. That sorts each format's durations without first sorting the whole
window by format, as ``GROUP BY format`` would (about a third less work); past
``max_filtered_formats`` formats it falls back to ``GROUP BY`` all the same.

SQLite has no ``percentile_cont``. It counts first, then streams the completed durations
``ORDER BY duration`` once, feeding one :class:`PercentilePicker` for the window and one
per format (each format's values arrive in ascending order too), so memory stays flat
whatever the window holds. Both statements run in one read transaction, so the stream
holds exactly the rows the counts announced even while the service keeps writing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Float,
    Row,
    Select,
    and_,
    case,
    func,
    literal_column,
    select,
    type_coerce,
)

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.parallel_queries import ParallelQueries
from opsctl.adapters.db.source_schema import require_table
from opsctl.adapters.db.tables import source_table
from opsctl.domain.stats import PercentilePicker
from opsctl.ports import ErrorTypeCount, FormatAggregate, WindowAggregate

AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]

COMPLETED, FAILED = "completed", "failed"
UNKNOWN = "unknown"  # a failed row without error_type, or a row without format
QUANTILES = (0.5, 0.95, 0.99)
FORMAT_QUANTILE = 0.95
STREAM_BATCH = 10_000


class DbMetricsSource:
    def __init__(
        self,
        db: Database,
        table: str,
        columns: Mapping[str, str],
        *,
        max_filtered_formats: int = 16,
    ) -> None:
        self.db = db
        self.table_name = table
        self.table = source_table(table, columns)
        self.max_filtered_formats = max_filtered_formats

    def aggregate(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        self._require_table()
        if self.db.is_sqlite:
            return self._sqlite(start, end, top)
        return self._postgres(start, end, top)

    # --- the statements (public so benchmarks can hand the same SQL to psql) ------------

    def breakdown_query(self, start: datetime, end: datetime) -> AnySelect:
        """Per format, status and (failed rows only) error type: the row count and the
        count and sum of durations and of file sizes."""
        c = self.table.c
        error = case(
            (c.status == FAILED, func.coalesce(c.error_type, literal_column(f"'{UNKNOWN}'"))),
            else_=None,
        )
        return (
            select(
                c.format,
                c.status,
                error,
                func.count(),
                func.count(c.duration_ms),
                func.sum(c.duration_ms),
                func.count(c.file_size_bytes),
                func.sum(c.file_size_bytes),
            )
            .where(self._in_window(start, end))
            .group_by(c.format, c.status, error)
        )

    def percentiles_query(self, start: datetime, end: datetime) -> AnySelect:
        """PostgreSQL: p50, p95, p99 of the window's completed durations, one sort."""
        c = self.table.c
        return select(_percentiles(c.duration_ms, QUANTILES)).where(self._durations(start, end))

    def format_p95_query(
        self, start: datetime, end: datetime, formats: Sequence[str | None]
    ) -> AnySelect:
        """PostgreSQL: one row with each format's p95 (one filtered aggregate per format),
        or past ``max_filtered_formats`` one row per format (``GROUP BY``)."""
        c = self.table.c
        q, durations = (FORMAT_QUANTILE,), self._durations(start, end)
        if self._grouped(formats):
            return (
                select(c.format, _percentiles(c.duration_ms, q)).where(durations).group_by(c.format)
            )
        filtered = [
            _percentiles(c.duration_ms, q, c.format.is_(None) if fmt is None else c.format == fmt)
            for fmt in formats
        ]
        return select(*filtered).where(durations)

    def sorted_durations_query(self, start: datetime, end: datetime) -> AnySelect:
        """SQLite: (format, duration) of completed exports, ascending, to stream."""
        c = self.table.c
        return (
            select(c.format, c.duration_ms)
            .where(self._durations(start, end))
            .order_by(c.duration_ms)
        )

    def _in_window(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        c = self.table.c
        return and_(c.created_at >= start, c.created_at < end)

    def _durations(self, start: datetime, end: datetime) -> ColumnElement[bool]:
        c = self.table.c
        return and_(self._in_window(start, end), c.status == COMPLETED, c.duration_ms.is_not(None))

    def _grouped(self, formats: Sequence[str | None]) -> bool:
        return len(formats) > self.max_filtered_formats

    def _require_table(self) -> None:
        with self.db.connect() as conn:
            require_table(conn, self.table, self.db.safe_url)

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _postgres(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        # The workers import this connection's snapshot, so every statement sees the same
        # rows (an export turning completed mid-run cannot be counted as processing by one
        # statement and sorted as completed by another).
        with self.db.connect() as lead:
            lead.execution_options(isolation_level="REPEATABLE READ")
            snapshot = str(lead.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            with ParallelQueries(self.db, workers=2, snapshot=snapshot) as run:
                breakdown = run.submit(
                    lambda conn: conn.execute(self.breakdown_query(start, end)).all()
                )
                whole = run.submit(
                    lambda conn: conn.execute(self.percentiles_query(start, end)).scalar_one()
                )
                tally = _Tally.of(breakdown.result())
                formats = [fmt for fmt, counts in tally.formats.items() if counts.duration_count]
                per_format = run.submit(lambda conn: self._format_p95(conn, start, end, formats))
                p95, quantiles = per_format.result(), whole.result()
        p50, p95_all, p99 = quantiles or (None, None, None)
        return WindowAggregate(
            formats=tally.aggregates(p95),
            p50_duration_ms=p50,
            p95_duration_ms=p95_all,
            p99_duration_ms=p99,
            top_error_types=tally.top_errors(top),
        )

    def _format_p95(
        self, conn: Connection, start: datetime, end: datetime, formats: Sequence[str | None]
    ) -> dict[str | None, float | None]:
        if not formats:
            return {}
        result = conn.execute(self.format_p95_query(start, end, formats))
        if self._grouped(formats):
            return {fmt: values[0] for fmt, values in result}
        row = result.one()
        return {fmt: value[0] if value else None for fmt, value in zip(formats, row, strict=True)}

    # --- SQLite -------------------------------------------------------------------------------

    def _sqlite(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        with self.db.connect() as conn:
            # One read transaction: the stream below must hold exactly the counted rows.
            conn.exec_driver_sql("BEGIN")
            tally = _Tally.of(conn.execute(self.breakdown_query(start, end)))
            overall = PercentilePicker(
                sum(f.duration_count for f in tally.formats.values()), QUANTILES
            )
            pickers = {
                fmt: PercentilePicker(f.duration_count, (FORMAT_QUANTILE,))
                for fmt, f in tally.formats.items()
            }
            stream = conn.execution_options(yield_per=STREAM_BATCH).execute(
                self.sorted_durations_query(start, end)
            )
            for batch in stream.partitions():
                for fmt, duration in batch:
                    value = float(duration)
                    overall.feed(value)
                    pickers[fmt].feed(value)
        quantiles = overall.result()
        return WindowAggregate(
            formats=tally.aggregates(
                {fmt: picker.result()[FORMAT_QUANTILE] for fmt, picker in pickers.items()}
            ),
            p50_duration_ms=quantiles[0.5],
            p95_duration_ms=quantiles[0.95],
            p99_duration_ms=quantiles[0.99],
            top_error_types=tally.top_errors(top),
        )


def _percentiles(
    column: ColumnElement[Any], qs: Sequence[float], where: ColumnElement[bool] | None = None
) -> ColumnElement[Any]:
    """``percentile_cont(ARRAY[...]) WITHIN GROUP (ORDER BY column) [FILTER (WHERE ...)]``:
    one sort for every fraction."""
    fractions: ColumnElement[Any] = literal_column(
        "ARRAY[" + ", ".join(repr(float(q)) for q in qs) + "]"
    )
    aggregate: Any = func.percentile_cont(fractions).within_group(column)
    if where is not None:
        aggregate = aggregate.filter(where)
    return type_coerce(aggregate, ARRAY(Float))


@dataclass
class _FormatCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0
    duration_count: int = 0
    duration_sum: int = 0
    file_size_count: int = 0
    file_size_sum: int = 0


@dataclass
class _Tally:
    """The breakdown rows folded into per-format counts and error-type counts."""

    formats: dict[str | None, _FormatCounts]
    errors: Counter[str]

    @classmethod
    def of(cls, rows: Iterable[AnyRow]) -> _Tally:
        tally = cls({}, Counter())
        for fmt, status, error, n, d_count, d_sum, s_count, s_sum in rows:
            counts = tally.formats.setdefault(fmt, _FormatCounts())
            counts.total += int(n)
            if status == COMPLETED:
                # Durations and sizes are those of completed exports only.
                counts.completed += int(n)
                counts.duration_count += int(d_count)
                counts.duration_sum += int(d_sum or 0)
                counts.file_size_count += int(s_count)
                counts.file_size_sum += int(s_sum or 0)
            elif status == FAILED:
                counts.failed += int(n)
                tally.errors[str(error)] += int(n)
        return tally

    def aggregates(self, p95: Mapping[str | None, float | None]) -> tuple[FormatAggregate, ...]:
        return tuple(
            FormatAggregate(
                format=UNKNOWN if fmt is None else str(fmt),
                total=c.total,
                completed=c.completed,
                failed=c.failed,
                duration_count=c.duration_count,
                duration_sum=c.duration_sum,
                p95_duration_ms=p95.get(fmt),
                file_size_count=c.file_size_count,
                file_size_sum=c.file_size_sum,
            )
            for fmt, c in self.formats.items()
        )

    def top_errors(self, top: int) -> tuple[ErrorTypeCount, ...]:
        """Most frequent first; ties by code point, the same on every backend."""
        ranked = sorted(self.errors.items(), key=lambda item: (-item[1], item[0]))
        return tuple(ErrorTypeCount(name, n) for name, n in ranked[:top])
