"""``status``: the one screen for on-call. Are the jobs running on time, is an alert open,
how is the last hour going, and is cleanup keeping up?

A read-only report, like ``schedule show``: no lock, not recorded in run history. The
state is the worst finding:

- ``critical`` (exit 2): a job is overdue, an alert is open, or the failure rate of the
  last hour is above ``[failure_rate] threshold`` (with at least ``min_samples`` exports);
- ``warning`` (exit 1): the failure rate is above ``warning``, or a job's last run failed
  (it could not do its work: exit 3 or above);
- ``ok`` (exit 0) otherwise.

Rows and files waiting for cleanup are shown, not judged: they are waiting for their
job's next run, and a job that does not run is what ``overdue`` catches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.durations import format_duration
from opsctl.domain.stats import safe_ratio
from opsctl.exit_codes import JOB_SUCCEEDED, ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.jobs.schedule_show import JobVerdict, ScheduleParams, judge_all
from opsctl.ports import FailedRun, OpenAlert, StatusSource

JOB = "status"
SUMMARY_TYPE = "status_report"
FAILED_RUNS_SHOWN = 20
_CODES = {"ok": ExitCode.OK, "warning": ExitCode.WARNING, "critical": ExitCode.CRITICAL}


@dataclass(frozen=True)
class StatusParams:
    schedule: ScheduleParams
    window: timedelta = timedelta(minutes=60)
    threshold: float = 0.10
    warning: float = 0.05
    min_samples: int = 5
    retention_days: int = 30


def run(ctx: JobContext, source: StatusSource, params: StatusParams) -> JobResult:
    now = ctx.now()
    schedule = ScheduleParams(params.schedule.schedules, params.schedule.grace,
                              params.schedule.next_count, failed_runs=FAILED_RUNS_SHOWN)
    judged = judge_all(source, schedule, now)
    alerts = source.open_alerts()
    work = source.pending(now - params.window, now, now - timedelta(days=params.retention_days))
    finished = work.completed + work.failed
    rate = safe_ratio(work.failed, finished)
    jobs = [_job_row(v, now) for v in judged.jobs]
    findings = _findings(jobs, alerts, rate, finished, params)
    state = ("critical" if any(level == "critical" for level, _ in findings)
             else "warning" if findings else "ok")
    fields = {
        "jobs": jobs,
        "open_alerts": [_alert(a) for a in alerts],
        "failure_rate": round(rate, 4) if rate is not None else None,
        "failure_window": format_duration(params.window),
        "completed": work.completed,
        "failed": work.failed,
        "pending_log_rows": work.pending_log_rows,
        "pending_files": work.pending_files,
        "findings": [text for _, text in findings],
        "history_since": judged.snapshot.tables_created_at,
    }
    return JobResult(
        SUMMARY_TYPE, _message(state, findings), state, _CODES[state], fields,
        extra={
            "now": now,
            "failed_runs": [_failed(f) for f in judged.snapshot.failed_runs],
            "params": params,
        },
    )


def _job_row(verdict: JobVerdict, now: datetime) -> dict[str, Any]:
    past = verdict.history
    last, ok = past.last_run, past.last_success
    return {
        "job": verdict.job,
        "cron": verdict.cron,
        "last_run_at": last.started_at if last else None,
        "last_state": last.state if last else None,
        "last_exit_code": last.exit_code if last else None,
        "last_run_age_s": round((now - last.started_at).total_seconds()) if last else None,
        "last_success_at": ok.started_at if ok else None,
        "overdue": verdict.verdict.overdue,
        "due_at": verdict.verdict.due_at,
        "running": past.running,
    }


def _alert(alert: OpenAlert) -> dict[str, Any]:
    return {"name": alert.name, "opened_at": alert.opened_at,
            "last_notified_at": alert.last_notified_at,
            "severity": alert.details.get("severity", "critical")}


def _failed(failed: FailedRun) -> dict[str, Any]:
    error = failed.run.error or {}
    return {"job": failed.job, "started_at": failed.run.started_at,
            "finished_at": failed.run.finished_at, "state": failed.run.state,
            "exit_code": failed.run.exit_code, "error_kind": error.get("kind"),
            "error_message": error.get("message")}


def _findings(
    jobs: list[dict[str, Any]], alerts: list[OpenAlert], rate: float | None, finished: int,
    params: StatusParams,
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for row in jobs:
        if row["overdue"]:
            found.append(("critical", f"{row['job']} is overdue"))
    for alert in alerts:
        found.append(("critical", f"alert {alert.name} is open"))
    if rate is not None and finished >= params.min_samples:
        shown = f"failure rate {rate:.1%} over the last {format_duration(params.window)}"
        if rate > params.threshold:
            found.append(("critical", f"{shown} (> {params.threshold:.0%})"))
        elif rate > params.warning:
            found.append(("warning", f"{shown} (> {params.warning:.0%})"))
    for row in jobs:
        code = row["last_exit_code"]
        if code is not None and code not in JOB_SUCCEEDED:
            found.append(("warning", f"{row['job']}'s last run failed (exit {code})"))
    return found


def _message(state: str, findings: list[tuple[str, str]]) -> str:
    if not findings:
        return "all jobs on schedule, no open alert"
    return f"{state}: " + "; ".join(text for _, text in findings)
