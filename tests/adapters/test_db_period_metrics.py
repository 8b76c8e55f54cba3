"""Many periods in one pass, on real SQLite files and the real PostgreSQL: each period's
aggregate is exactly what the single-window query gives for it, on crafted rows whose
numbers were worked out by hand; and the rollup store's bulk upsert and read-back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import export_row, insert_exports

from opsctl.adapters.db import migrations
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.metrics import DbMetricsSource
from opsctl.adapters.db.period_metrics import DbPeriodMetrics
from opsctl.adapters.db.rollups import DbRollupStore
from opsctl.ports import ErrorTypeCount, FormatAggregate, MetricRollup, WindowAggregate

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(hour: int, minute: int = 30) -> datetime:
    return START + hour * HOUR + timedelta(minutes=minute)


def crafted_rows() -> list[dict[str, Any]]:
    """Hour 0: json 100..500 completed + 1 failed timeout, csv 2000 + 1 queued.
    Hour 1: nothing. Hour 2: json 10, 20 and a failed row without error type, a failed
    xml row, and rows on both edges. Rows outside [START, START + 4h) must not count."""
    rows = [export_row(format="json", duration_ms=d, file_size_bytes=d * 10, created_at=at(0))
            for d in (100, 200, 300, 400, 500)]
    rows += [
        export_row(format="json", status="failed", error_type="timeout", duration_ms=7,
                   file_size_bytes=None, created_at=at(0)),
        export_row(format="csv", duration_ms=2000, file_size_bytes=5, created_at=START),
        export_row(format="csv", status="queued", duration_ms=None, file_size_bytes=None,
                   created_at=at(0, 59)),
        export_row(format="json", duration_ms=10, created_at=START + 2 * HOUR),
        export_row(format="json", duration_ms=20,
                   created_at=START + 3 * HOUR - timedelta(microseconds=1)),
        export_row(format="json", status="failed", error_type=None, duration_ms=None,
                   created_at=at(2)),
        export_row(format="xml", status="failed", error_type="quota", duration_ms=None,
                   file_size_bytes=None, created_at=at(2)),
        export_row(format="json", duration_ms=99_999, created_at=START - timedelta(seconds=1)),
        export_row(format="json", duration_ms=99_999, created_at=START + 4 * HOUR),
    ]
    return rows


def prepared(url: str, rows: list[dict[str, Any]]) -> Database:
    db = Database(url)
    db.engine.dispose()  # creates the SQLite directory
    insert_exports(url, rows)
    return db


def test_each_period_equals_its_single_window_aggregate(db_url: str) -> None:
    db = prepared(db_url, crafted_rows())
    periods = dict(
        DbPeriodMetrics(db, "export_logs", {}).aggregate_periods(START, START + 4 * HOUR, HOUR, 5)
    )
    assert sorted(periods) == [START, START + 2 * HOUR]  # empty hours are left out
    single = DbMetricsSource(db, "export_logs", {})
    for moment, aggregate in periods.items():
        expected = single.aggregate(moment, moment + HOUR, 5)
        assert _normalised(aggregate) == _normalised(expected)


def test_hand_computed_values_of_one_period(db_url: str) -> None:
    db = prepared(db_url, crafted_rows())
    periods = dict(
        DbPeriodMetrics(db, "export_logs", {}).aggregate_periods(START, START + 4 * HOUR, HOUR, 5)
    )
    first = periods[START]
    formats = {f.format: f for f in first.formats}
    # json durations 100..500: p95 position 0.95 * 4 = 3.8, 400 + 0.8 * 100.
    assert formats["json"] == FormatAggregate("json", 6, 5, 1, 5, 1500, 480.0, 5, 15_000)
    assert formats["csv"] == FormatAggregate("csv", 2, 1, 0, 1, 2000, 2000.0, 1, 5)
    # completed 100, 200, 300, 400, 500, 2000: p50 at 2.5 → 350; p95 at 4.75 → 1625;
    # p99 at 4.95 → 1925.
    assert (first.p50_duration_ms, first.p95_duration_ms, first.p99_duration_ms) == (
        350.0, pytest.approx(1625.0), pytest.approx(1925.0))
    assert first.top_error_types == (ErrorTypeCount("timeout", 1),)
    third = periods[START + 2 * HOUR]
    assert third.p50_duration_ms == 15.0
    assert third.top_error_types == (ErrorTypeCount("quota", 1), ErrorTypeCount("unknown", 1))
    assert {f.format: f.p95_duration_ms for f in third.formats} == {"json": 19.5, "xml": None}


def test_daily_periods_are_utc_days(db_url: str) -> None:
    day = datetime(2026, 11, 18, tzinfo=UTC)
    rows = [export_row(duration_ms=d, created_at=day + timedelta(hours=h))
            for d, h in ((100, 0), (300, 23.99), (50, 24), (70, 47.5))]
    db = prepared(db_url, rows)
    periods = dict(DbPeriodMetrics(db, "export_logs", {}).aggregate_periods(
        day, day + timedelta(days=2), timedelta(days=1), 5))
    assert {k: v.p50_duration_ms for k, v in periods.items()} == {
        day: 200.0, day + timedelta(days=1): 60.0}


def test_rollups_upsert_many_and_read_back_by_period(db_url: str) -> None:
    db = prepared(db_url, [])
    migrations.ensure_schema(db)
    store = DbRollupStore(db)
    computed = datetime(2026, 11, 21, tzinfo=UTC)

    def rollup(period: str, start: datetime, length: timedelta, total: int) -> MetricRollup:
        return MetricRollup(period, start, start + length, total, 0.5,
                            {"total_exports": total, "ratio": 0.1}, computed)

    store.upsert_many([rollup("hourly", START + k * HOUR, HOUR, k) for k in range(3)])
    store.upsert_many([
        rollup("hourly", START + HOUR, HOUR, 42),  # replaces
        rollup("custom", START, HOUR, 7),  # another period kind
        rollup("hourly", START, 2 * HOUR, 9),  # not one period long
    ])
    assert store.stored("hourly", START, START + 2 * HOUR) == {
        START: {"total_exports": 0, "ratio": 0.1},
        START + HOUR: {"total_exports": 42, "ratio": 0.1},
    }
    store.upsert_many([])


def _normalised(aggregate: WindowAggregate) -> WindowAggregate:
    return WindowAggregate(
        formats=tuple(sorted(aggregate.formats, key=lambda f: f.format)),
        p50_duration_ms=aggregate.p50_duration_ms,
        p95_duration_ms=aggregate.p95_duration_ms,
        p99_duration_ms=aggregate.p99_duration_ms,
        top_error_types=aggregate.top_error_types,
    )
