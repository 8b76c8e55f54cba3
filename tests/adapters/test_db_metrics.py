"""Window aggregates and rollups on real SQLite files and the real PostgreSQL, on crafted
rows whose averages and percentiles were worked out by hand."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from support import export_row, insert_exports

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.metrics import DbMetricsSource
from opsctl.adapters.db.parallel_queries import ParallelQueries
from opsctl.adapters.db.rollups import DbRollupStore
from opsctl.errors import SourceSchemaError
from opsctl.ports import ErrorTypeCount, FormatAggregate, MetricRollup, WindowAggregate

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
INSIDE = START + timedelta(minutes=30)


def crafted_rows() -> list[dict[str, Any]]:
    rows = [
        export_row(format="json", duration_ms=d, file_size_bytes=1000, created_at=INSIDE)
        for d in range(100, 1001, 100)
    ]
    rows += [
        # failed and unfinished rows count in totals, never in durations or sizes
        export_row(
            format="json",
            status="failed",
            error_type="timeout",
            duration_ms=50,
            file_size_bytes=77,
            created_at=INSIDE,
        ),
        export_row(
            format="json",
            status="failed",
            error_type="timeout",
            duration_ms=50,
            file_size_bytes=None,
            created_at=INSIDE,
        ),
        export_row(
            format="json",
            status="queued",
            duration_ms=None,
            file_size_bytes=None,
            created_at=INSIDE,
        ),
        # the start belongs to the window
        export_row(format="csv", duration_ms=2000, file_size_bytes=500, created_at=START),
        export_row(format="csv", duration_ms=4000, file_size_bytes=1500, created_at=INSIDE),
        export_row(
            format="csv",
            duration_ms=9000,
            file_size_bytes=4000,
            created_at=END - timedelta(microseconds=1),
        ),
        export_row(format="csv", duration_ms=None, file_size_bytes=None, created_at=INSIDE),
        export_row(
            format="csv",
            status="failed",
            error_type="quota",
            duration_ms=None,
            file_size_bytes=None,
            created_at=INSIDE,
        ),
        export_row(
            format="csv",
            status="failed",
            error_type=None,
            duration_ms=None,
            file_size_bytes=None,
            created_at=INSIDE,
        ),
        # the end belongs to the next window; earlier rows to earlier ones
        export_row(format="json", duration_ms=99_999, created_at=END),
        export_row(format="json", status="failed", error_type="zz_late", created_at=END),
        export_row(format="json", duration_ms=99_999, created_at=START - timedelta(microseconds=1)),
        export_row(format="xml", duration_ms=99_999, created_at=START - timedelta(days=1)),
    ]
    return rows


def prepared(url: str, rows: list[dict[str, Any]], **kwargs: Any) -> Database:
    db = Database(url)
    db.engine.dispose()  # creates the SQLite directory
    insert_exports(url, rows, **kwargs)
    return db


def source(db: Database, **kwargs: Any) -> DbMetricsSource:
    return DbMetricsSource(db, "export_logs", {}, **kwargs)


def by_name(result: WindowAggregate) -> dict[str, FormatAggregate]:
    return {f.format: f for f in result.formats}


def test_counts_sums_and_percentiles_of_the_half_open_window(db_url: str) -> None:
    result = source(prepared(db_url, crafted_rows())).aggregate(START, END, 5)
    formats = by_name(result)
    assert set(formats) == {"json", "csv"}
    assert formats["json"] == FormatAggregate(
        format="json",
        total=13,
        completed=10,
        failed=2,
        duration_count=10,
        duration_sum=5500,
        p95_duration_ms=pytest.approx(955.0),
        file_size_count=10,
        file_size_sum=10_000,
    )
    # n = 3: position 0.95 * 2 = 1.9, between 4000 and 9000.
    assert formats["csv"] == FormatAggregate(
        format="csv",
        total=6,
        completed=4,
        failed=2,
        duration_count=3,
        duration_sum=15_000,
        p95_duration_ms=pytest.approx(8500.0),
        file_size_count=3,
        file_size_sum=6000,
    )
    # Completed durations 100..1000, 2000, 4000, 9000 (n = 13): positions 6, 11.4, 11.88.
    assert result.p50_duration_ms == 700.0
    assert result.p95_duration_ms == pytest.approx(6000.0)
    assert result.p99_duration_ms == pytest.approx(8400.0)
    assert result.top_error_types == (
        ErrorTypeCount("timeout", 2),
        ErrorTypeCount("quota", 1),
        ErrorTypeCount("unknown", 1),
    )


def test_percentiles_come_back_as_floats(db_url: str) -> None:
    result = source(prepared(db_url, crafted_rows())).aggregate(START, END, 5)
    assert isinstance(result.p50_duration_ms, float)
    assert all(isinstance(f.p95_duration_ms, float) for f in result.formats)


def test_top_error_types_are_limited_and_ties_go_by_code_point(db_url: str) -> None:
    rows = [
        export_row(status="failed", error_type=name, created_at=INSIDE)
        for name in ("b_err", "b_err", "alpha", "Zeta", "a_err", "a_err")
    ]
    result = source(prepared(db_url, rows)).aggregate(START, END, 3)
    # Counts first; then "Zeta" < "a_err" < "alpha" by code point, whatever the locale.
    assert result.top_error_types == (
        ErrorTypeCount("a_err", 2),
        ErrorTypeCount("b_err", 2),
        ErrorTypeCount("Zeta", 1),
    )


def test_an_empty_window_has_no_formats_and_no_percentiles(db_url: str) -> None:
    result = source(prepared(db_url, crafted_rows())).aggregate(
        END + timedelta(hours=1), END + timedelta(hours=2), 5
    )
    assert result == WindowAggregate(
        formats=(),
        p50_duration_ms=None,
        p95_duration_ms=None,
        p99_duration_ms=None,
        top_error_types=(),
    )


def test_a_format_without_completed_durations_has_no_p95(db_url: str) -> None:
    rows = [
        export_row(format="csv", status="failed", error_type="x", created_at=INSIDE),
        export_row(format="json", duration_ms=300, created_at=INSIDE),
    ]
    formats = by_name(source(prepared(db_url, rows)).aggregate(START, END, 5))
    assert formats["csv"].p95_duration_ms is None and formats["csv"].duration_count == 0
    assert formats["json"].p95_duration_ms == 300.0


def test_remapped_table_and_columns(db_url: str) -> None:
    columns = {
        "created_at": "inserted_at",
        "duration_ms": "took_ms",
        "format": "kind",
        "status": "state",
        "error_type": "error_class",
    }
    db = prepared(db_url, crafted_rows(), table="export_events", columns=columns)
    remapped = DbMetricsSource(db, "export_events", columns).aggregate(START, END, 5)
    plain = source(prepared(db_url, crafted_rows())).aggregate(START, END, 5)
    assert remapped == plain


def test_a_missing_table_is_a_source_error_naming_it(db_url: str) -> None:
    db = prepared(db_url, [])
    with pytest.raises(SourceSchemaError, match="table export_archive does not exist"):
        DbMetricsSource(db, "export_archive", {}).aggregate(START, END, 5)


def test_a_missing_column_is_a_source_error_not_a_crash(db_url: str) -> None:
    db = prepared(db_url, crafted_rows())
    with pytest.raises(SourceSchemaError, match=r"took_ms.*\[source.columns\]"):
        DbMetricsSource(db, "export_logs", {"duration_ms": "took_ms"}).aggregate(START, END, 5)


def test_read_only_connections_are_enough(db_url: str) -> None:
    prepared(db_url, crafted_rows())
    result = source(Database(db_url, read_only=True)).aggregate(START, END, 5)
    assert sum(f.total for f in result.formats) == 19


def random_rows(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        status = rng.choice(["completed"] * 6 + ["failed", "failed", "queued", "expired"])
        rows.append(
            export_row(
                format=rng.choice(["json", "jsonl", "csv", "parquet"]),
                status=status,
                duration_ms=rng.choice([None, rng.randint(1, 50) * 37, rng.randint(1, 90_000)]),
                file_size_bytes=rng.choice([None, rng.randint(0, 10**10)]),
                error_type=rng.choice([None, "timeout", "quota", "oom"])
                if status == "failed"
                else None,
                created_at=START + timedelta(seconds=rng.randint(-600, 4200)),
            )
        )
    return rows


@pytest.mark.postgres
def test_sqlite_and_postgresql_agree_exactly(sqlite_url: str, pg_url: str) -> None:
    rows = random_rows(seed=20261120, n=1500)
    lite = source(prepared(sqlite_url, rows)).aggregate(START, END, 3)
    pg_db = prepared(pg_url, rows)
    pg = source(pg_db).aggregate(START, END, 3)
    grouped = source(pg_db, max_filtered_formats=1).aggregate(START, END, 3)

    def ordered(result: WindowAggregate) -> WindowAggregate:
        formats = tuple(sorted(result.formats, key=lambda f: f.format))
        return WindowAggregate(
            formats,
            result.p50_duration_ms,
            result.p95_duration_ms,
            result.p99_duration_ms,
            result.top_error_types,
        )

    assert len(lite.formats) == 4 and lite.p95_duration_ms is not None
    # Bit-for-bit: same counts, same sums, same floating-point percentiles.
    assert ordered(lite) == ordered(pg) == ordered(grouped)


SLOW_VIEW = """
CREATE VIEW slow_exports AS
SELECT id, export_id, user_id, format, status, conversation_count,
       opsctl_test_slow(duration_ms) AS duration_ms, file_size_bytes, file_path, error_type,
       error_message, created_at, expires_at
FROM export_logs
"""


@pytest.mark.postgres
def test_a_failing_query_cancels_the_ones_still_running(pg_url: str) -> None:
    """The percentiles sleep on the server; the counts fail at once (unknown column). The
    sleeping statement must be cancelled, not waited for: without the cancel this test
    would sit for ten minutes and be stopped by the suite's timeout."""
    db = prepared(pg_url, crafted_rows())
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION opsctl_test_slow(v integer) RETURNS integer AS "
                "$$ BEGIN PERFORM pg_sleep(600); RETURN v; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(text(SLOW_VIEW))
    slow = DbMetricsSource(db, "slow_exports", {"file_size_bytes": "no_such_column"})
    with pytest.raises(SourceSchemaError, match="no_such_column"):
        slow.aggregate(START, END, 5)
    with engine.connect() as conn:
        still_running = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%slow_exports%' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    engine.dispose()
    db.dispose()
    assert still_running == 0


@pytest.mark.postgres
def test_the_concurrent_statements_share_one_snapshot(pg_url: str) -> None:
    """A row committed after the snapshot was taken is invisible to every worker, even
    one that connects later: all statements of a run describe the same data."""
    db = prepared(pg_url, crafted_rows())
    count = select(func.count()).select_from(DbMetricsSource(db, "export_logs", {}).table)
    with db.connect() as lead:
        lead.execution_options(isolation_level="REPEATABLE READ")
        snapshot = str(lead.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
        insert_exports(pg_url, [export_row(created_at=INSIDE)])  # committed now
        with ParallelQueries(db, workers=2, snapshot=snapshot) as run:
            seen = [run.submit(lambda conn: conn.execute(count).scalar_one()) for _ in range(2)]
            counts = [future.result() for future in seen]
    with db.connect() as conn:
        now = conn.execute(count).scalar_one()
    db.dispose()
    assert (counts, now) == ([len(crafted_rows())] * 2, len(crafted_rows()) + 1)


# --- rollups ------------------------------------------------------------------------------


def rollup(total: int, *, period: str = "hourly", computed: datetime = END) -> MetricRollup:
    return MetricRollup(
        period=period,
        window_start=START,
        window_end=END,
        total_exports=total,
        failure_rate=0.25,
        metrics={"total_exports": total, "by_format": {}},
        computed_at=computed,
    )


def stored(db: Database) -> list[tuple[Any, ...]]:
    t = tables.metric_rollups
    with db.connect() as conn:
        rows = conn.execute(
            select(
                t.c.period,
                t.c.window_start,
                t.c.window_end,
                t.c.total_exports,
                t.c.metrics,
                t.c.computed_at,
            ).order_by(t.c.period)
        ).all()
    return [tuple(row) for row in rows]


def test_upserting_the_same_window_twice_updates_one_row(db_url: str) -> None:
    db = prepared(db_url, [])
    migrations.ensure_schema(db)
    store = DbRollupStore(db)
    store.upsert(rollup(10))
    store.upsert(rollup(12, computed=END + timedelta(minutes=5)))
    assert stored(db) == [
        (
            "hourly",
            START,
            END,
            12,
            {"total_exports": 12, "by_format": {}},
            END + timedelta(minutes=5),
        )
    ]


def test_another_period_over_the_same_times_is_another_row(db_url: str) -> None:
    db = prepared(db_url, [])
    migrations.ensure_schema(db)
    store = DbRollupStore(db)
    store.upsert(rollup(10))
    store.upsert(rollup(11, period="custom"))
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.metric_rollups)).scalar() == 2
    assert [row[0] for row in stored(db)] == ["custom", "hourly"]
