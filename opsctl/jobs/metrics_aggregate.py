"""``metrics.aggregate``: the export service's numbers over one half-open window.

The database does the heavy part (counts, sums and exact percentiles, see the
``MetricsSource`` port); this module turns what it returns into rates, averages and
warnings, so the arithmetic is the same on every backend and testable without one.

Decisions worth knowing:

- Durations and file sizes are those of *completed* exports, as the original system
  measured them: a failed export's duration is how long it took to fail, and a mix of the
  two would move the p95 whenever the failure rate moves.
- Rates divide by finished exports (completed + failed); queued, processing and expired
  rows count in ``total_exports`` and ``exports_per_hour`` only. With no finished export
  the rates are null, not 0: nothing was measured.
- ``period`` names a real hourly or daily period only when the window is one (the default
  window, or ``--since 09:00 --until 10:00`` to backfill an hour); any other window is
  ``custom``, so ad-hoc runs stored with ``--store`` never pass for an hourly rollup.
- Warnings are strict: a value equal to its threshold does not warn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.stats import mean, safe_ratio
from opsctl.domain.units import human_ms, human_percent
from opsctl.domain.windows import Period, Window, resolve_window
from opsctl.errors import UsageError
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import FormatAggregate, MetricRollup, MetricsSource, RollupStore, WindowAggregate

JOB = "metrics.aggregate"
SUMMARY_TYPE = "aggregated_metrics"
WARNING_EVENT = "metrics_threshold_warning"
CUSTOM_PERIOD = "custom"

_PERIOD_LENGTH: dict[str, timedelta] = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}


@dataclass(frozen=True)
class AggregateParams:
    """The options of one run, parsed; the window itself is resolved against the clock."""

    period: Period = "hourly"
    window: timedelta | None = None
    since: datetime | None = None
    until: datetime | None = None
    store: bool = False
    top_error_types: int = 5
    warn_avg_duration_ms: float = 5000.0
    warn_exports_per_hour: float = 1000.0


@dataclass(frozen=True)
class MetricsPorts:
    source: MetricsSource
    rollups: RollupStore


def window_for(params: AggregateParams, now: datetime) -> Window:
    """The window the options select at ``now``; UsageError (64) for a bad combination."""
    try:
        return resolve_window(now, params.period, params.window, params.since, params.until)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def period_label(period: Period, window: Window) -> str:
    """``period`` when the window is exactly one aligned hour or UTC day, else ``custom``."""
    if window.duration != _PERIOD_LENGTH[period]:
        return CUSTOM_PERIOD
    start = window.start
    aligned = start.minute == start.second == start.microsecond == 0
    if period == "daily":
        aligned = aligned and start.hour == 0
    return period if aligned else CUSTOM_PERIOD


def run(ctx: JobContext, ports: MetricsPorts, params: AggregateParams) -> JobResult:
    window = window_for(params, ctx.now())
    period = period_label(params.period, window)
    aggregate = ports.source.aggregate(window.start, window.end, params.top_error_types)
    fields = summarise(period, window, aggregate)

    crossed = [
        (metric, value, threshold)
        for metric, value, threshold in (
            ("avg_duration_ms", fields["avg_duration_ms"], params.warn_avg_duration_ms),
            ("exports_per_hour", fields["exports_per_hour"], params.warn_exports_per_hour),
        )
        if value is not None and value > threshold
    ]
    for metric, value, threshold in crossed:
        ctx.emitter.emit(
            WARNING_EVENT,
            f"{metric} {value:g} is above its warning {threshold:g}",
            level="warning",
            metric=metric,
            value=value,
            threshold=threshold,
        )

    stored = False
    if params.store and not ctx.dry_run:
        ports.rollups.upsert(
            MetricRollup(
                period=period,
                window_start=window.start,
                window_end=window.end,
                total_exports=fields["total_exports"],
                failure_rate=fields["failure_rate"],
                metrics=fields,
                computed_at=ctx.now(),
            )
        )
        stored = True

    state, code = ("warning", ExitCode.WARNING) if crossed else ("ok", ExitCode.OK)
    return JobResult(
        SUMMARY_TYPE,
        _message(fields),
        state,
        code,
        {**fields, "dry_run": ctx.dry_run, "stored": stored},
    )


def summarise(period: str, window: Window, aggregate: WindowAggregate) -> dict[str, Any]:
    """The ``aggregated_metrics`` fields (without run flags), as stored in a rollup."""
    formats = sorted(aggregate.formats, key=lambda f: f.format)
    total = sum(f.total for f in formats)
    completed = sum(f.completed for f in formats)
    failed = sum(f.failed for f in formats)
    duration_count = sum(f.duration_count for f in formats)
    size_count = sum(f.file_size_count for f in formats)
    size_sum = sum(f.file_size_sum for f in formats)
    return {
        "period": period,
        "window_start": rfc3339(window.start),
        "window_end": rfc3339(window.end),
        "total_exports": total,
        "completed": completed,
        "failed": failed,
        "success_rate": safe_ratio(completed, completed + failed),
        "failure_rate": safe_ratio(failed, completed + failed),
        "avg_duration_ms": mean(sum(f.duration_sum for f in formats), duration_count),
        "p50_duration_ms": aggregate.p50_duration_ms,
        "p95_duration_ms": aggregate.p95_duration_ms,
        "p99_duration_ms": aggregate.p99_duration_ms,
        "avg_duration_by_format": {
            f.format: mean(f.duration_sum, f.duration_count) for f in formats
        },
        "by_format": {f.format: _format_fields(f) for f in formats},
        "total_file_size_bytes": size_sum,
        "avg_file_size_bytes": mean(size_sum, size_count),
        "exports_per_hour": total / window.hours,
        "top_error_types": [
            {"error_type": e.error_type, "count": e.count} for e in aggregate.top_error_types
        ],
    }


def _format_fields(f: FormatAggregate) -> dict[str, Any]:
    return {
        "total": f.total,
        "completed": f.completed,
        "failed": f.failed,
        "success_rate": safe_ratio(f.completed, f.completed + f.failed),
        "avg_duration_ms": mean(f.duration_sum, f.duration_count),
        "p95_duration_ms": f.p95_duration_ms,
        "total_file_size_bytes": f.file_size_sum,
    }


def _message(fields: dict[str, Any]) -> str:
    return (
        f"{fields['total_exports']} exports from {fields['window_start']} to "
        f"{fields['window_end']}: failure rate {human_percent(fields['failure_rate'])}, "
        f"avg duration {human_ms(fields['avg_duration_ms'])}"
    )
