"""metrics backfill with in-memory fakes of its ports: which periods, what counts as new,
changed or unchanged, empty periods, dry run."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsctl.domain.windows import Window
from opsctl.errors import UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.metrics_aggregate import JOB, summarise
from opsctl.jobs.metrics_backfill import (
    BackfillParams,
    BackfillPorts,
    backfill_window,
    run,
)
from opsctl.ports import ErrorTypeCount, FormatAggregate, MetricRollup, WindowAggregate
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 20, 10, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
BUSY = WindowAggregate(
    formats=(FormatAggregate("json", 4, 3, 1, 3, 600, 290.0, 3, 30),),
    p50_duration_ms=200.0, p95_duration_ms=290.0, p99_duration_ms=298.0,
    top_error_types=(ErrorTypeCount("timeout", 1),),
)
EMPTY = WindowAggregate(formats=(), p50_duration_ms=None, p95_duration_ms=None,
                        p99_duration_ms=None)


@dataclass
class FakePeriods:
    periods: dict[datetime, WindowAggregate]
    calls: list[tuple[datetime, datetime, timedelta]] = field(default_factory=list)

    def aggregate_periods(
        self, start: datetime, end: datetime, length: timedelta, top: int
    ) -> Iterator[tuple[datetime, WindowAggregate]]:
        self.calls.append((start, end, length))
        return iter(sorted(self.periods.items()))


@dataclass
class FakeStore:
    metrics: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    writes: list[list[MetricRollup]] = field(default_factory=list)

    def stored(self, period: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
        return {k: v for k, v in self.metrics.items() if start <= k < end}

    def upsert_many(self, rollups: Sequence[MetricRollup]) -> None:
        self.writes.append(list(rollups))
        for rollup in rollups:
            self.metrics[rollup.window_start] = json.loads(json.dumps(rollup.metrics))


def context(dry_run: bool = False) -> JobContext:
    runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={}, output="json",
                      clock=lambda: NOW)
    return JobContext(JOB, runtime, Emitter(runtime, JOB), dry_run=dry_run)


def stored_fields(start: datetime, aggregate: WindowAggregate) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        json.dumps(summarise("hourly", Window(start, start + HOUR), aggregate)))
    return loaded


def test_twelve_hours_are_the_twelve_whole_hours_before_the_current_one() -> None:
    window = backfill_window(NOW, "hourly", timedelta(hours=12))
    assert window == Window(datetime(2026, 11, 19, 22, tzinfo=UTC),
                            datetime(2026, 11, 20, 10, tzinfo=UTC))
    # a span that is not a whole number of periods keeps the whole ones
    assert backfill_window(NOW, "hourly", timedelta(minutes=150)).duration == 2 * HOUR
    assert backfill_window(NOW, "daily", timedelta(days=3)) == Window(
        datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))


def test_a_span_shorter_than_one_period_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="shorter than one daily period"):
        backfill_window(NOW, "daily", timedelta(hours=23))


def test_new_changed_and_unchanged_periods() -> None:
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    source = FakePeriods({start: BUSY, start + HOUR: BUSY})
    store = FakeStore({
        start: stored_fields(start, BUSY),  # same values: unchanged
        start + HOUR: stored_fields(start + HOUR, EMPTY),  # a late row since: changed
        start + 2 * HOUR: stored_fields(start + 2 * HOUR, EMPTY),  # still empty: unchanged
    })
    result = run(context(), BackfillPorts(source, store),
                 BackfillParams(period="hourly", span=4 * HOUR))
    assert source.calls == [(start, start + 4 * HOUR, HOUR)]
    assert (result.state, result.exit_code) == ("ok", ExitCode.OK)
    assert result.fields == {
        "period": "hourly", "periods": 4, "inserted": 1, "updated": 1, "unchanged": 2,
        "window_start": "2026-11-20T06:00:00.000Z", "window_end": "2026-11-20T10:00:00.000Z",
        "dry_run": False,
    }
    assert len(store.writes) == 1
    written = {r.window_start: r for r in store.writes[0]}
    assert sorted(written) == [start + HOUR, start + 3 * HOUR]
    # the empty period is stored as zeros, with null rates: nothing was measured
    empty = written[start + 3 * HOUR]
    assert (empty.total_exports, empty.failure_rate, empty.window_end) == (0, None,
                                                                           start + 4 * HOUR)
    assert empty.metrics["exports_per_hour"] == 0.0 and empty.metrics["completed"] == 0
    assert written[start + HOUR].metrics["total_exports"] == 4
    assert written[start + HOUR].computed_at == NOW

    again = run(context(), BackfillPorts(source, store),
                BackfillParams(period="hourly", span=4 * HOUR))
    assert (again.fields["inserted"], again.fields["updated"], again.fields["unchanged"]) == (
        0, 0, 4)
    assert len(store.writes) == 1  # nothing to write, no transaction


def test_dry_run_counts_but_writes_nothing() -> None:
    store = FakeStore()
    result = run(context(dry_run=True), BackfillPorts(FakePeriods({}), store),
                 BackfillParams(period="hourly", span=3 * HOUR))
    assert (result.fields["inserted"], result.fields["dry_run"]) == (3, True)
    assert store.writes == []
    assert "would store 3 new" in result.message


def test_many_periods_are_written_in_chunks() -> None:
    store = FakeStore()
    result = run(context(), BackfillPorts(FakePeriods({}), store),
                 BackfillParams(period="hourly", span=timedelta(days=60)))
    assert result.fields["periods"] == result.fields["inserted"] == 1440
    assert [len(chunk) for chunk in store.writes] == [500, 500, 440]
