"""``runs stats``: per-job health of opsctl's own runs, with the original system's alerts.

Cron runs this to learn that a job has stopped doing its work, so what counts as a
*failed* run matters. A run succeeded when its exit code is 0 (OK), 1 (WARNING: it ran,
some items failed or a warning threshold was crossed) or 2 (CRITICAL: it ran and found
something critical, e.g. ``failure-rate check`` raising its alert, which is the job
working). It failed when it could not do or judge its work: 3 (UNKNOWN: database, storage
or archive unreachable, timeout), 78 (configuration error), 130/143 (interrupted) or any
other code. Skipped runs (75) and dry runs are never recorded, so they never count.

A job is in ``alert`` when, over the window:
- more than ``alert_failure_rate`` of its runs failed, once it has ``alert_min_runs``;
- its last ``alert_consecutive_failures`` or more runs failed in a row; or
- its average duration is above ``alert_max_avg_duration``.
Any job in alert makes the invocation exit 2 (CRITICAL), else 0.

Like ``runs list`` this is a report and is not itself recorded in run history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from opsctl.domain.durations import format_duration
from opsctl.domain.stats import safe_ratio
from opsctl.domain.units import human_ms, human_percent
from opsctl.exit_codes import JOB_SUCCEEDED, ExitCode
from opsctl.jobs.alerting import publish
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import Alert, AlertPublisher, JobRunTotals, RunHistory

SUMMARY_TYPE = "job_run_stats_summary"
JOB_EVENT = "job_run_stats"
MANAGER_ALERT = "OpsctlJobFailing"
SUCCESS_EXIT_CODES = JOB_SUCCEEDED

FAILURE_RATE = "failure_rate"
CONSECUTIVE_FAILURES = "consecutive_failures"
AVG_DURATION = "avg_duration"


@dataclass(frozen=True)
class AlertRules:
    """The ``[runs]`` thresholds; each is crossed only when strictly exceeded, except the
    streak, which alerts at ``consecutive_failures`` in a row ("3 or more")."""

    failure_rate: float = 0.5
    min_runs: int = 5
    consecutive_failures: int = 3
    max_avg_duration: timedelta = timedelta(minutes=5)

    @property
    def max_avg_duration_ms(self) -> float:
        return self.max_avg_duration.total_seconds() * 1000

    def fields(self) -> dict[str, Any]:
        return {
            "alert_failure_rate": self.failure_rate,
            "alert_min_runs": self.min_runs,
            "alert_consecutive_failures": self.consecutive_failures,
            "alert_max_avg_duration_ms": self.max_avg_duration_ms,
        }


@dataclass(frozen=True)
class StatsParams:
    window: timedelta = timedelta(days=7)
    rules: AlertRules = field(default_factory=AlertRules)


def reasons(totals: JobRunTotals, rules: AlertRules) -> list[str]:
    """The alert rules a job breaks, in a fixed order; empty when it is healthy."""
    found = []
    rate = safe_ratio(totals.failed, totals.runs)
    if rate is not None and totals.runs >= rules.min_runs and rate > rules.failure_rate:
        found.append(FAILURE_RATE)
    if totals.consecutive_failures >= rules.consecutive_failures:
        found.append(CONSECUTIVE_FAILURES)
    if totals.avg_duration_ms is not None and totals.avg_duration_ms > rules.max_avg_duration_ms:
        found.append(AVG_DURATION)
    return found


def run(ctx: JobContext, history: RunHistory, params: StatsParams,
        alertmanager: AlertPublisher | None = None) -> JobResult:
    end = ctx.now()
    start = end - params.window
    rows = []
    for totals in history.job_totals(start, SUCCESS_EXIT_CODES):
        broken = reasons(totals, params.rules)
        row = job_fields(totals, broken)
        ctx.emitter.for_job(totals.job).emit(
            JOB_EVENT, _job_message(totals, broken, params.rules),
            level="error" if broken else "info", **row,
        )
        rows.append({"job": totals.job, **row})
    in_alert = [row["job"] for row in rows if row["state"] == "alert"]
    window = format_duration(params.window)
    firing = [_manager_alert(row, params.rules) for row in rows if row["reasons"]]
    publish(ctx, alertmanager, MANAGER_ALERT, firing,
            lambda labels: labels.get("opsctl_job") not in in_alert)
    return JobResult(
        SUMMARY_TYPE,
        _summary_message(len(rows), in_alert, window),
        "alert" if in_alert else "ok",
        ExitCode.CRITICAL if in_alert else ExitCode.OK,
        {
            "window": window,
            "window_start": start,
            "window_end": end,
            "jobs": len(rows),
            "jobs_in_alert": len(in_alert),
            "alert_jobs": in_alert,
            **params.rules.fields(),
        },
        extra={"jobs": rows, "rules": params.rules},
    )


def _manager_alert(row: dict[str, Any], rules: AlertRules) -> Alert:
    job = row["job"]
    return Alert(MANAGER_ALERT, "critical", {"opsctl_job": job},
                 f"opsctl job {job} is failing",
                 "; ".join(describe(reason, row, rules) for reason in row["reasons"]))


def job_fields(totals: JobRunTotals, broken: list[str]) -> dict[str, Any]:
    succeeded = totals.runs - totals.failed
    rate = safe_ratio(succeeded, totals.runs)
    return {
        "runs": totals.runs,
        "succeeded": succeeded,
        "failed": totals.failed,
        "success_rate": round(rate, 4) if rate is not None else None,
        "avg_duration_ms": _ms(totals.avg_duration_ms),
        "p95_duration_ms": _ms(totals.p95_duration_ms),
        "last_run_at": totals.last_run_at,
        "last_state": totals.last_state,
        "last_exit_code": totals.last_exit_code,
        "last_success_at": totals.last_success_at,
        "consecutive_failures": totals.consecutive_failures,
        "state": "alert" if broken else "ok",
        "reasons": broken,
    }


def describe(reason: str, row: dict[str, Any], rules: AlertRules) -> str:
    """A reason code as a sentence with its numbers, for messages and the text table."""
    if reason == FAILURE_RATE:
        failure_rate = row["failed"] / row["runs"]
        return (f"{human_percent(failure_rate)} of {row['runs']} runs failed "
                f"(> {human_percent(rules.failure_rate)})")
    if reason == CONSECUTIVE_FAILURES:
        return (f"last {row['consecutive_failures']} runs failed "
                f"(>= {rules.consecutive_failures} in a row)")
    if reason == AVG_DURATION:
        return (f"average {human_ms(row['avg_duration_ms'])} "
                f"(> {human_ms(rules.max_avg_duration_ms)})")
    return reason


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _job_message(totals: JobRunTotals, broken: list[str], rules: AlertRules) -> str:
    if broken:
        row = {"runs": totals.runs, "failed": totals.failed,
               "consecutive_failures": totals.consecutive_failures,
               "avg_duration_ms": totals.avg_duration_ms}
        return f"{totals.job}: alert: " + "; ".join(describe(r, row, rules) for r in broken)
    rate = human_percent(safe_ratio(totals.runs - totals.failed, totals.runs))
    runs = f"{totals.runs} run{'s' if totals.runs != 1 else ''}"
    return f"{totals.job}: ok: {runs}, {rate} succeeded"


def _summary_message(jobs: int, in_alert: list[str], window: str) -> str:
    if not jobs:
        return f"no runs recorded in the last {window}"
    if in_alert:
        return f"{len(in_alert)} of {jobs} jobs in alert over the last {window}: " + ", ".join(
            in_alert)
    return f"{jobs} job{'s' if jobs != 1 else ''} ok over the last {window}"
