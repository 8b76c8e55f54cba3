"""``logs.stats``: how big the export log table is and how much of it a cleanup would take.

It reads and never writes, so the CLI runs it like a dry run: no lock, no schema upgrade,
no run record, and on PostgreSQL inside a READ ONLY transaction. The cutoff is computed
exactly as ``logs cleanup`` computes it, so "eligible" here is what a cleanup started at
the same moment would delete. Rows whose ``created_at`` is no timestamp (possible on SQLite)
are left out of the bounds and reported one by one, and the run exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.logs_cleanup import report_poison
from opsctl.jobs.result import JobResult
from opsctl.ports import LogStatsSource

JOB = "logs.stats"
SUMMARY_TYPE = "export_log_cleanup_stats"


@dataclass(frozen=True)
class LogStatsParams:
    retention_days: int

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise ValueError(f"retention_days must be >= 0, got {self.retention_days}")


def run(ctx: JobContext, source: LogStatsSource, params: LogStatsParams) -> JobResult:
    cutoff = ctx.now() - timedelta(days=params.retention_days)
    stats = source.stats(cutoff)
    report_poison(ctx, stats.poison)
    fields = {
        "retention_days": params.retention_days,
        "cutoff": rfc3339(cutoff),
        "total_rows": stats.total_rows,
        "eligible_for_cleanup": stats.eligible,
        "oldest_created_at": _stamp(stats.oldest_created_at),
        "newest_created_at": _stamp(stats.newest_created_at),
        "quarantined_count": len(stats.poison),
    }
    message = (f"{stats.eligible:,} of {stats.total_rows:,} log rows are older than "
               f"{params.retention_days} days")
    if stats.poison:
        message += f"; {len(stats.poison)} row(s) have a created_at that is no timestamp"
        return JobResult(SUMMARY_TYPE, message, "warning", ExitCode.WARNING, fields)
    return JobResult(SUMMARY_TYPE, message, "ok", ExitCode.OK, fields)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)
