"""``metrics aggregate --store --backfill DUR``: the complete periods of the last DUR,
computed in one pass and stored where the rollup table misses them or holds other values.

Decisions worth knowing:

- The periods end where the current period starts, so ``--backfill 12h`` at 10:20 takes
  the twelve whole hours 22:00-10:00, the same periods an hourly cron would have stored;
  a DUR that is not a whole number of periods keeps the whole periods it covers.
- Each period's fields are exactly those a single ``--store`` run of that period stores
  (:func:`~opsctl.jobs.metrics_aggregate.summarise`), so a backfill over periods the cron
  already stored finds them unchanged and writes nothing.
- A period without exports is stored too, with zero counts and null rates: zero is a fact,
  a gap is not knowing.
- A stored rollup counts as changed when its JSON differs from the recomputed one (late
  rows, status updates); ``computed_at`` alone never makes a period changed.
- Backfill judges no threshold: its summary reports what was stored, not the metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.durations import format_duration
from opsctl.domain.windows import Period, Window, last_complete_period
from opsctl.errors import UsageError
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.metrics_aggregate import summarise
from opsctl.jobs.result import JobResult
from opsctl.ports import MetricRollup, PeriodMetricsSource, StoredRollups, WindowAggregate

SUMMARY_TYPE = "metrics_backfill_complete"
PERIOD_LENGTH: dict[str, timedelta] = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
EMPTY = WindowAggregate(formats=(), p50_duration_ms=None, p95_duration_ms=None,
                        p99_duration_ms=None)
UPSERT_CHUNK = 500


@dataclass(frozen=True)
class BackfillParams:
    period: Period = "hourly"
    span: timedelta = timedelta(hours=24)
    top_error_types: int = 5


@dataclass(frozen=True)
class BackfillPorts:
    source: PeriodMetricsSource
    rollups: StoredRollups


def backfill_window(now: datetime, period: Period, span: timedelta) -> Window:
    """The whole periods of ``span`` that end where the current period starts;
    UsageError (64) when ``span`` holds not even one."""
    length = PERIOD_LENGTH[period]
    count = span // length
    if count < 1:
        raise UsageError(
            f"--backfill {format_duration(span)} is shorter than one {period} period"
        )
    end = last_complete_period(now, period).end
    return Window(end - count * length, end)


def run(ctx: JobContext, ports: BackfillPorts, params: BackfillParams) -> JobResult:
    window = backfill_window(ctx.now(), params.period, params.span)
    length = PERIOD_LENGTH[params.period]
    computed = dict(
        ports.source.aggregate_periods(window.start, window.end, length, params.top_error_types)
    )
    stored = ports.rollups.stored(params.period, window.start, window.end)

    changes: list[MetricRollup] = []
    inserted = updated = unchanged = 0
    computed_at = ctx.now()
    start = window.start
    while start < window.end:
        period_window = Window(start, start + length)
        fields = _as_stored(summarise(params.period, period_window,
                                      computed.get(start, EMPTY)))
        previous = stored.get(start)
        if previous == fields:
            unchanged += 1
        else:
            if previous is None:
                inserted += 1
            else:
                updated += 1
            changes.append(MetricRollup(
                period=params.period, window_start=period_window.start,
                window_end=period_window.end, total_exports=fields["total_exports"],
                failure_rate=fields["failure_rate"], metrics=fields, computed_at=computed_at,
            ))
        start += length

    if not ctx.dry_run:
        for offset in range(0, len(changes), UPSERT_CHUNK):
            ports.rollups.upsert_many(changes[offset:offset + UPSERT_CHUNK])

    periods = inserted + updated + unchanged
    verb = "would store" if ctx.dry_run else "stored"
    message = (
        f"{params.period} backfill {rfc3339(window.start)} to {rfc3339(window.end)}: "
        f"{periods} periods, {verb} {inserted} new and {updated} changed, "
        f"{unchanged} unchanged"
    )
    return JobResult(
        SUMMARY_TYPE, message, "ok", ExitCode.OK,
        {
            "period": params.period,
            "periods": periods,
            "inserted": inserted,
            "updated": updated,
            "unchanged": unchanged,
            "window_start": rfc3339(window.start),
            "window_end": rfc3339(window.end),
            "dry_run": ctx.dry_run,
        },
    )


def _as_stored(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as they come back from the JSON column, so a stored rollup and a fresh
    one compare equal when their values are."""
    loaded: dict[str, Any] = json.loads(json.dumps(fields))
    return loaded
