"""``metrics report``: the trend of volume, failure rate and p95 duration, period by period.

It reads and never writes, so the CLI runs it like a dry run (no lock, no schema upgrade,
no run record). It judges no threshold: the failure-rate threshold travels with the result
only so a chart can draw it.

The series covers complete periods only, ending with the one that just ended, as
``metrics aggregate`` does: ``--since 30d`` hourly is exactly 720 periods, and a rerun in
the same hour gives the same series. Stored rollups win (they are what cron recorded);
the periods without one are computed from the source table in one grouped pass over the
stretch they span, and a period without exports is a zero, not a gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.stats import safe_ratio
from opsctl.domain.units import human_count, human_percent
from opsctl.domain.windows import Period, last_complete_period
from opsctl.errors import UsageError
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import MetricSeriesSource, PeriodTotals

JOB = "metrics.report"
SUMMARY_TYPE = "metrics_report"
PERIOD_LENGTH: dict[str, timedelta] = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
DEFAULT_SINCE: dict[str, timedelta] = {"hourly": timedelta(hours=24), "daily": timedelta(days=30)}
# A year of hours: beyond that a chart says nothing a coarser period would not.
MAX_PERIODS = 8784


@dataclass(frozen=True)
class ReportParams:
    period: Period = "hourly"
    since: timedelta | None = None  # None: DEFAULT_SINCE of the period
    failure_rate_threshold: float = 0.10


@dataclass(frozen=True)
class ReportSpan:
    """The periods a report covers: ``count`` periods of ``length`` ending at ``end``."""

    start: datetime
    end: datetime
    length: timedelta

    @property
    def starts(self) -> list[datetime]:
        count = round((self.end - self.start) / self.length)
        return [self.start + i * self.length for i in range(count)]


def span_for(params: ReportParams, now: datetime) -> ReportSpan:
    """The complete periods of the last ``since``; UsageError (64) when too many or none."""
    length = PERIOD_LENGTH[params.period]
    since = params.since if params.since is not None else DEFAULT_SINCE[params.period]
    if since <= timedelta(0):
        raise UsageError(f"--since must be positive, got {since}")
    count = max(1, math.ceil(since / length))
    if count > MAX_PERIODS:
        raise UsageError(f"--since {since} is {count} {params.period} periods; at most "
                         f"{MAX_PERIODS} fit in one report (try --period daily)")
    end = last_complete_period(now, params.period).end
    return ReportSpan(end - count * length, end, length)


def run(ctx: JobContext, source: MetricSeriesSource, params: ReportParams) -> JobResult:
    span = span_for(params, ctx.now())
    starts = span.starts
    stored = {p.window_start: p for p in source.stored(params.period, span.start, span.end)}
    missing = [start for start in starts if start not in stored]
    computed: dict[datetime, PeriodTotals] = {}
    if missing:
        computed = {p.window_start: p for p in
                    source.computed(params.period, missing[0], missing[-1] + span.length)}
    series = [
        _point(stored.get(start) or computed.get(start) or PeriodTotals(start, 0, 0, 0, None))
        for start in starts
    ]
    total = sum(p["total"] for p in series)
    completed = sum(p["completed"] for p in series)
    failed = sum(p["failed"] for p in series)
    fields = {
        "period": params.period,
        "window_start": rfc3339(span.start),
        "window_end": rfc3339(span.end),
        "periods": len(series),
        "stored_periods": len(starts) - len(missing),
        "computed_periods": len(missing),
        "total": total,
        "completed": completed,
        "failed": failed,
        "failure_rate": safe_ratio(failed, completed + failed),
        "failure_rate_threshold": params.failure_rate_threshold,
        "series": series,
    }
    message = (f"{len(series)} {params.period} periods: {human_count(total)} exports, "
               f"failure rate {human_percent(fields['failure_rate'])}")
    return JobResult(SUMMARY_TYPE, message, "ok", ExitCode.OK, fields)


def _point(p: PeriodTotals) -> dict[str, Any]:
    return {
        "window_start": rfc3339(p.window_start),
        "total": p.total,
        "completed": p.completed,
        "failed": p.failed,
        "failure_rate": safe_ratio(p.failed, p.completed + p.failed),
        "p95_duration_ms": p.p95_duration_ms,
    }
