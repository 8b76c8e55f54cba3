"""``MetricsSource`` on the configured source table: counts, sums and exact percentiles of
one window, computed where the rows are.

PostgreSQL computes every percentile with ``percentile_cont`` and no row ever reaches
Python. Its ordered-set aggregates cannot use a parallel plan, so the work is split into
independent queries run at once on separate pooled connections sharing one snapshot
(:mod:`~opsctl.adapters.db.parallel_queries`): per-format counts and sums, the top error
types, the overall percentiles, and (as soon as the counts name the formats) the
per-format p95 as one filtered aggregate per format. That last query sorts
each format's durations without first sorting the whole window by format, which is what
``GROUP BY format`` would do; past ``max_filtered_formats`` formats it falls back to
``GROUP BY`` all the same.

SQLite has no ``percentile_cont``. It counts first, then streams the completed durations
``ORDER BY duration`` once, feeding one :class:`PercentilePicker` for the window and one
per format (each format's values arrive in ascending order too), so memory stays flat
whatever the window holds. Both statements run in one read transaction, so the stream
holds exactly the rows the counts announced even while the service keeps writing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    collate,
    func,
    inspect,
    literal_column,
    select,
    type_coerce,
)

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.parallel_queries import ParallelQueries
from opsctl.adapters.db.tables import source_table
from opsctl.domain.stats import PercentilePicker
from opsctl.errors import DatabaseUnavailable
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

    def counts_query(self, start: datetime, end: datetime) -> AnySelect:
        """Per format: total, completed, failed, and count/sum of completed durations and
        file sizes."""
        c = self.table.c
        done = c.status == COMPLETED
        return (
            select(
                c.format,
                func.count(),
                func.count().filter(done),
                func.count().filter(c.status == FAILED),
                func.count(c.duration_ms).filter(done),
                func.sum(c.duration_ms).filter(done),
                func.count(c.file_size_bytes).filter(done),
                func.sum(c.file_size_bytes).filter(done),
            )
            .where(self._in_window(start, end))
            .group_by(c.format)
        )

    def top_errors_query(self, start: datetime, end: datetime, top: int) -> AnySelect:
        c = self.table.c
        name = func.coalesce(c.error_type, literal_column(f"'{UNKNOWN}'"))
        count = func.count()
        # Ties by code point on both backends (PostgreSQL would otherwise use the
        # database's locale), so SQLite and PostgreSQL list the same names.
        by_name = collate(name, "BINARY" if self.db.is_sqlite else "C")
        return (
            select(name, count)
            .where(self._in_window(start, end), c.status == FAILED)
            .group_by(name)
            .order_by(count.desc(), by_name)
            .limit(top)
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
        t = self.table
        with self.db.connect() as conn:
            if not inspect(conn).has_table(t.name, schema=t.schema):
                raise DatabaseUnavailable(
                    f"table {self.table_name} does not exist in {self.db.safe_url} "
                    "(set [source] table, or create it with `opsctl demo seed`)"
                )

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _postgres(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        # The workers import this connection's snapshot, so all four statements see the
        # same rows (an export turning completed mid-run cannot be counted as processing
        # by one statement and sorted as completed by another).
        with self.db.connect() as lead:
            lead.execution_options(isolation_level="REPEATABLE READ")
            snapshot = str(lead.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            with ParallelQueries(self.db, workers=3, snapshot=snapshot) as run:
                counts = run.submit(lambda conn: conn.execute(self.counts_query(start, end)).all())
                errors = run.submit(
                    lambda conn: conn.execute(self.top_errors_query(start, end, top)).all()
                )
                whole = run.submit(
                    lambda conn: conn.execute(self.percentiles_query(start, end)).scalar_one()
                )
                count_rows = counts.result()
                formats = [row[0] for row in count_rows if row[4]]
                p95 = run.submit(lambda conn: self._format_p95(conn, start, end, formats))
                by_format, quantiles, error_rows = p95.result(), whole.result(), errors.result()
        p50, p95_all, p99 = quantiles or (None, None, None)
        return WindowAggregate(
            formats=tuple(_format(row, by_format.get(row[0])) for row in count_rows),
            p50_duration_ms=p50,
            p95_duration_ms=p95_all,
            p99_duration_ms=p99,
            top_error_types=_errors(error_rows),
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
            count_rows = conn.execute(self.counts_query(start, end)).all()
            error_rows = conn.execute(self.top_errors_query(start, end, top)).all()
            overall = PercentilePicker(sum(int(row[4]) for row in count_rows), QUANTILES)
            pickers = {
                row[0]: PercentilePicker(int(row[4]), (FORMAT_QUANTILE,)) for row in count_rows
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
            formats=tuple(
                _format(row, pickers[row[0]].result()[FORMAT_QUANTILE]) for row in count_rows
            ),
            p50_duration_ms=quantiles[0.5],
            p95_duration_ms=quantiles[0.95],
            p99_duration_ms=quantiles[0.99],
            top_error_types=_errors(error_rows),
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


def _format(row: AnyRow, p95: float | None) -> FormatAggregate:
    fmt, total, completed, failed, d_count, d_sum, s_count, s_sum = row
    return FormatAggregate(
        format=UNKNOWN if fmt is None else str(fmt),
        total=int(total),
        completed=int(completed),
        failed=int(failed),
        duration_count=int(d_count),
        duration_sum=int(d_sum or 0),
        p95_duration_ms=p95,
        file_size_count=int(s_count),
        file_size_sum=int(s_sum or 0),
    )


def _errors(rows: Sequence[AnyRow]) -> tuple[ErrorTypeCount, ...]:
    return tuple(ErrorTypeCount(str(name), int(n)) for name, n in rows)
