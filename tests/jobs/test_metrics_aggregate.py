"""metrics.aggregate with in-memory fakes of its ports: windows from an injected clock,
exact rates and averages from crafted aggregates, warnings, storing and dry run."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsctl.domain.windows import Window
from opsctl.errors import UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.metrics_aggregate import (
    JOB,
    AggregateParams,
    MetricsPorts,
    period_label,
    run,
    window_for,
)
from opsctl.ports import ErrorTypeCount, FormatAggregate, MetricRollup, WindowAggregate
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 20, 10, 0, 30, tzinfo=UTC)
EMPTY = WindowAggregate(
    formats=(), p50_duration_ms=None, p95_duration_ms=None, p99_duration_ms=None
)


def fmt(
    name: str,
    total: int,
    completed: int,
    failed: int,
    durations: list[int],
    sizes: list[int],
    p95: float | None = None,
) -> FormatAggregate:
    return FormatAggregate(
        name, total, completed, failed, len(durations), sum(durations), p95, len(sizes), sum(sizes)
    )


# json: 10 rows (8 completed, 2 failed); csv: 4 rows (2 completed, 1 failed, 1 queued).
CRAFTED = WindowAggregate(
    formats=(
        fmt("json", 10, 8, 2, [100, 200, 300, 400, 500, 600, 700, 800], [1000] * 8, p95=765.0),
        fmt("csv", 4, 2, 1, [1000, 3000], [500, 1500], p95=2900.0),
    ),
    p50_duration_ms=550.0,
    p95_duration_ms=2300.0,
    p99_duration_ms=2860.0,
    top_error_types=(ErrorTypeCount("timeout", 2), ErrorTypeCount("quota", 1)),
)


@dataclass
class FakeSource:
    value: WindowAggregate = EMPTY
    calls: list[tuple[datetime, datetime, int]] = field(default_factory=list)

    def aggregate(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        self.calls.append((start, end, top))
        return self.value


@dataclass
class FakeRollups:
    rows: dict[tuple[str, datetime, datetime], MetricRollup] = field(default_factory=dict)

    def upsert(self, rollup: MetricRollup) -> None:
        self.rows[(rollup.period, rollup.window_start, rollup.window_end)] = rollup


@dataclass
class Harness:
    source: FakeSource
    rollups: FakeRollups
    out: io.StringIO
    now: datetime = NOW

    def run(self, params: AggregateParams, *, dry_run: bool = False) -> Any:
        runtime = Runtime(
            stdout=self.out, stderr=io.StringIO(), env={}, output="json", clock=lambda: self.now
        )
        ctx = JobContext(JOB, runtime, Emitter(runtime, JOB), dry_run=dry_run)
        return run(ctx, MetricsPorts(self.source, self.rollups), params)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


@pytest.fixture
def harness() -> Harness:
    return Harness(FakeSource(CRAFTED), FakeRollups(), io.StringIO())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_default_window_is_the_last_complete_hour_of_the_injected_clock(
    harness: Harness,
) -> None:
    result = harness.run(AggregateParams(top_error_types=3))
    assert harness.source.calls == [(utc(2026, 11, 20, 9), utc(2026, 11, 20, 10), 3)]
    assert result.fields["period"] == "hourly"
    assert result.fields["window_start"] == "2026-11-20T09:00:00.000Z"
    assert result.fields["window_end"] == "2026-11-20T10:00:00.000Z"


def test_a_rerun_later_in_the_hour_asks_for_the_same_window(harness: Harness) -> None:
    harness.run(AggregateParams())
    harness.now = NOW + timedelta(minutes=59)
    harness.run(AggregateParams())
    assert harness.source.calls[0] == harness.source.calls[1]


def test_daily_period_reports_the_previous_utc_day(harness: Harness) -> None:
    result = harness.run(AggregateParams(period="daily"))
    assert harness.source.calls[0][:2] == (utc(2026, 11, 19), utc(2026, 11, 20))
    assert result.fields["period"] == "daily"
    assert result.fields["exports_per_hour"] == 14 / 24


def test_rates_averages_and_formats_from_crafted_aggregates(harness: Harness) -> None:
    result = harness.run(
        AggregateParams(
            since=utc(2026, 11, 20, 9), until=utc(2026, 11, 20, 9, 30), warn_exports_per_hour=10_000
        )
    )
    f = result.fields
    assert (result.state, result.exit_code) == ("ok", ExitCode.OK)
    assert f["period"] == "custom"  # half an hour is no hourly period
    assert (f["total_exports"], f["completed"], f["failed"]) == (14, 10, 3)
    assert f["success_rate"] == 10 / 13
    assert f["failure_rate"] == 3 / 13
    # Completed durations: 100..800 (sum 3600) and 1000, 3000: 7600 over 10.
    assert f["avg_duration_ms"] == 760.0
    assert (f["p50_duration_ms"], f["p95_duration_ms"], f["p99_duration_ms"]) == (
        550.0,
        2300.0,
        2860.0,
    )
    assert f["avg_duration_by_format"] == {"csv": 2000.0, "json": 450.0}
    assert list(f["by_format"]) == ["csv", "json"]  # by name, whatever the source's order
    assert f["by_format"]["csv"] == {
        "total": 4,
        "completed": 2,
        "failed": 1,
        "success_rate": 2 / 3,
        "avg_duration_ms": 2000.0,
        "p95_duration_ms": 2900.0,
        "total_file_size_bytes": 2000,
    }
    assert f["by_format"]["json"] == {
        "total": 10,
        "completed": 8,
        "failed": 2,
        "success_rate": 0.8,
        "avg_duration_ms": 450.0,
        "p95_duration_ms": 765.0,
        "total_file_size_bytes": 8000,
    }
    assert f["total_file_size_bytes"] == 10_000
    assert f["avg_file_size_bytes"] == 1000.0
    assert f["exports_per_hour"] == 28.0  # 14 rows in half an hour
    assert f["top_error_types"] == [
        {"error_type": "timeout", "count": 2},
        {"error_type": "quota", "count": 1},
    ]
    assert (f["dry_run"], f["stored"]) == (False, False)


def test_empty_window_reports_zeros_and_null_rates_and_exits_0() -> None:
    harness = Harness(FakeSource(EMPTY), FakeRollups(), io.StringIO())
    result = harness.run(AggregateParams(warn_avg_duration_ms=0, warn_exports_per_hour=0))
    f = result.fields
    assert (result.state, result.exit_code) == ("ok", ExitCode.OK)
    assert (f["total_exports"], f["completed"], f["failed"]) == (0, 0, 0)
    assert f["success_rate"] is None and f["failure_rate"] is None
    assert f["avg_duration_ms"] is None and f["avg_file_size_bytes"] is None
    assert (f["by_format"], f["avg_duration_by_format"], f["top_error_types"]) == ({}, {}, [])
    assert (f["total_file_size_bytes"], f["exports_per_hour"]) == (0, 0.0)
    assert harness.events() == []


def test_average_duration_above_its_warning_emits_an_event_and_exits_1(
    harness: Harness,
) -> None:
    result = harness.run(AggregateParams(warn_avg_duration_ms=759.5))
    assert (result.state, result.exit_code) == ("warning", ExitCode.WARNING)
    [event] = harness.events()
    assert event["type"] == "metrics_threshold_warning"
    assert (event["metric"], event["value"], event["threshold"]) == (
        "avg_duration_ms",
        760.0,
        759.5,
    )
    assert event["level"] == "warning" and event["job"] == JOB


def test_volume_above_its_warning_emits_an_event_and_exits_1(harness: Harness) -> None:
    result = harness.run(AggregateParams(warn_exports_per_hour=13))
    assert result.exit_code == ExitCode.WARNING
    [event] = harness.events()
    assert (event["metric"], event["value"], event["threshold"]) == ("exports_per_hour", 14.0, 13)


def test_a_value_equal_to_its_threshold_does_not_warn(harness: Harness) -> None:
    result = harness.run(AggregateParams(warn_avg_duration_ms=760, warn_exports_per_hour=14))
    assert (result.state, result.exit_code, harness.events()) == ("ok", ExitCode.OK, [])


def test_both_warnings_are_reported(harness: Harness) -> None:
    result = harness.run(AggregateParams(warn_avg_duration_ms=1, warn_exports_per_hour=1))
    assert result.exit_code == ExitCode.WARNING
    assert [e["metric"] for e in harness.events()] == ["avg_duration_ms", "exports_per_hour"]


def test_store_upserts_the_rollup_under_the_period_and_window(harness: Harness) -> None:
    result = harness.run(AggregateParams(store=True))
    assert result.fields["stored"] is True
    [(key, rollup)] = harness.rollups.rows.items()
    assert key == ("hourly", utc(2026, 11, 20, 9), utc(2026, 11, 20, 10))
    assert (rollup.total_exports, rollup.failure_rate) == (14, 3 / 13)
    assert rollup.computed_at == NOW
    assert rollup.metrics["p99_duration_ms"] == 2860.0
    assert "stored" not in rollup.metrics and "dry_run" not in rollup.metrics


def test_dry_run_stores_nothing_and_says_so(harness: Harness) -> None:
    result = harness.run(AggregateParams(store=True), dry_run=True)
    assert harness.rollups.rows == {}
    assert (result.fields["dry_run"], result.fields["stored"]) == (True, False)


def test_without_store_nothing_is_stored(harness: Harness) -> None:
    harness.run(AggregateParams())
    assert harness.rollups.rows == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (AggregateParams(window=timedelta(hours=1), since=utc(2026, 11, 20)), "--window"),
        (AggregateParams(until=utc(2026, 11, 20)), "--until needs --since"),
        (AggregateParams(since=utc(2026, 11, 20, 10), until=utc(2026, 11, 20, 10)), "before"),
        (AggregateParams(since=utc(2026, 11, 21)), "before now"),
    ],
)
def test_bad_window_options_are_usage_errors(
    harness: Harness, params: AggregateParams, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        harness.run(params)
    assert harness.source.calls == []


def test_window_option_gives_a_trailing_window_ending_now() -> None:
    window = window_for(AggregateParams(window=timedelta(minutes=15)), NOW)
    assert (window.start, window.end) == (NOW - timedelta(minutes=15), NOW)


@pytest.mark.parametrize(
    ("period", "start", "end", "label"),
    [
        ("hourly", utc(2026, 11, 20, 9), utc(2026, 11, 20, 10), "hourly"),
        ("hourly", utc(2026, 11, 20, 9, 30), utc(2026, 11, 20, 10, 30), "custom"),
        ("hourly", utc(2026, 11, 20, 9), utc(2026, 11, 20, 11), "custom"),
        ("daily", utc(2026, 11, 19), utc(2026, 11, 20), "daily"),
        ("daily", utc(2026, 11, 19, 1), utc(2026, 11, 20, 1), "custom"),
        ("daily", utc(2026, 11, 20, 9), utc(2026, 11, 20, 10), "custom"),
    ],
)
def test_period_names_only_an_aligned_period(
    period: Any, start: datetime, end: datetime, label: str
) -> None:
    assert period_label(period, Window(start, end)) == label
