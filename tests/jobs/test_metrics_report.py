"""``metrics.report`` with an in-memory source: the span, stored rollups first, the rest
computed in one call, empty periods as zeros."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from opsctl.errors import UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import metrics_report
from opsctl.jobs.context import JobContext
from opsctl.jobs.metrics_report import ReportParams
from opsctl.ports import PeriodTotals

NOW = datetime(2026, 11, 23, 10, 17, 5, tzinfo=UTC)
H = timedelta(hours=1)


class FakeSeries:
    def __init__(self, stored: list[PeriodTotals], computed: list[PeriodTotals]) -> None:
        self._stored, self._computed = stored, computed
        self.calls: list[tuple[str, str, datetime, datetime]] = []

    def stored(self, period: str, start: datetime, end: datetime) -> list[PeriodTotals]:
        self.calls.append(("stored", period, start, end))
        return [p for p in self._stored if start <= p.window_start < end]

    def computed(self, period: str, start: datetime, end: datetime) -> list[PeriodTotals]:
        self.calls.append(("computed", period, start, end))
        return [p for p in self._computed if start <= p.window_start < end]


def ctx() -> JobContext:
    from opsctl.runtime import Runtime

    runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={}, clock=lambda: NOW)
    return JobContext(metrics_report.JOB, runtime, Emitter(runtime, metrics_report.JOB),
                      dry_run=True)


def at(hour: int) -> datetime:
    return datetime(2026, 11, 23, hour, tzinfo=UTC)


def test_stored_rollups_win_and_the_gaps_are_computed_in_one_call() -> None:
    source = FakeSeries(
        stored=[PeriodTotals(at(7), 100, 90, 10, 1500.0)],
        computed=[PeriodTotals(at(7), 999, 999, 0, 1.0),  # a stored period: ignored
                  PeriodTotals(at(9), 40, 30, 10, 2500.0)],
    )
    result = metrics_report.run(ctx(), source, ReportParams(since=3 * H))
    assert source.calls == [("stored", "hourly", at(7), at(10)),
                            ("computed", "hourly", at(8), at(10))]
    assert result.summary_type == "metrics_report"
    assert (result.state, result.exit_code) == ("ok", ExitCode.OK)
    assert result.fields["series"] == [
        {"window_start": "2026-11-23T07:00:00.000Z", "total": 100, "completed": 90,
         "failed": 10, "failure_rate": 0.1, "p95_duration_ms": 1500.0},
        {"window_start": "2026-11-23T08:00:00.000Z", "total": 0, "completed": 0,
         "failed": 0, "failure_rate": None, "p95_duration_ms": None},
        {"window_start": "2026-11-23T09:00:00.000Z", "total": 40, "completed": 30,
         "failed": 10, "failure_rate": 0.25, "p95_duration_ms": 2500.0},
    ]
    f = result.fields
    assert (f["period"], f["window_start"], f["window_end"]) == (
        "hourly", "2026-11-23T07:00:00.000Z", "2026-11-23T10:00:00.000Z")
    assert (f["periods"], f["stored_periods"], f["computed_periods"]) == (3, 1, 2)
    assert (f["total"], f["completed"], f["failed"], f["failure_rate"]) == (140, 120, 20, 20 / 140)
    assert result.message == "3 hourly periods: 140 exports, failure rate 14.3 %"


def test_every_period_stored_means_no_query_on_the_source() -> None:
    source = FakeSeries(stored=[PeriodTotals(at(h), 1, 1, 0, 5.0) for h in (8, 9)],
                        computed=[])
    result = metrics_report.run(ctx(), source, ReportParams(since=2 * H))
    assert [c[0] for c in source.calls] == ["stored"]
    assert result.fields["computed_periods"] == 0


def test_daily_default_span_is_30_complete_days() -> None:
    source = FakeSeries([], [])
    result = metrics_report.run(ctx(), source, ReportParams(period="daily"))
    assert result.fields["periods"] == 30
    assert result.fields["window_end"] == "2026-11-23T00:00:00.000Z"
    assert result.fields["window_start"] == "2026-10-24T00:00:00.000Z"
    assert result.fields["failure_rate"] is None


@pytest.mark.parametrize(("since", "periods"), [
    (timedelta(days=30), 720), (timedelta(minutes=90), 2), (timedelta(minutes=5), 1),
    (None, 24)])
def test_span_counts_whole_periods(since: timedelta | None, periods: int) -> None:
    span = metrics_report.span_for(ReportParams(since=since), NOW)
    assert len(span.starts) == periods and span.end == at(10)


def test_too_long_or_empty_span_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="at most 8784"):
        metrics_report.span_for(ReportParams(since=timedelta(days=400)), NOW)
    with pytest.raises(UsageError, match="positive"):
        metrics_report.span_for(ReportParams(since=timedelta(0)), NOW)
