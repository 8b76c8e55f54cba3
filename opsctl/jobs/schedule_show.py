"""``schedule show``: each job's cron expression, next fire times, last run, and the dead
man's switch (``overdue``), read from run history and the job locks.

A read-only report: no lock, not recorded in run history. Exit 2 (CRITICAL) when a job is
overdue, so the command itself can be the check a monitoring system runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.durations import format_duration
from opsctl.domain.schedules import START_TOLERANCE, CronSchedule, Overdue, judge
from opsctl.exit_codes import JOB_SUCCEEDED, ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import HistorySnapshot, JobHistory, ScheduleHistory

JOB = "schedule.show"
SUMMARY_TYPE = "schedule_report"


@dataclass(frozen=True)
class ScheduleParams:
    schedules: dict[str, str]  # job -> cron expression, "" when not scheduled
    grace: timedelta = timedelta(minutes=10)
    next_count: int = 3
    failed_runs: int = 0  # how many of the latest failed runs to read along


@dataclass(frozen=True)
class JobVerdict:
    job: str
    cron: str
    history: JobHistory
    verdict: Overdue


@dataclass(frozen=True)
class Judged:
    now: datetime
    snapshot: HistorySnapshot
    jobs: list[JobVerdict] = field(default_factory=list)

    @property
    def overdue(self) -> list[str]:
        return [v.job for v in self.jobs if v.verdict.overdue]


def judge_all(history: ScheduleHistory, params: ScheduleParams, now: datetime) -> Judged:
    """Every job's verdict, from one history snapshot read at ``now``."""
    schedules = {job: CronSchedule(cron) if cron else None
                 for job, cron in params.schedules.items()}
    since: dict[str, datetime] = {}
    for job, schedule in schedules.items():
        due = schedule.latest_before(now - params.grace) if schedule else None
        if due is not None:
            since[job] = due - START_TOLERANCE
    snapshot = history.snapshot(list(params.schedules), JOB_SUCCEEDED, since,
                                failed_runs=params.failed_runs)
    verdicts = []
    for job, schedule in schedules.items():
        past = snapshot.jobs[job]
        verdict = judge(
            schedule, params.grace, now,
            last_success_started_at=past.success_started_since,
            ever_succeeded=past.last_success is not None,
            running=past.running,
            history_started_at=snapshot.tables_created_at,
        )
        verdicts.append(JobVerdict(job, params.schedules[job], past, verdict))
    return Judged(now, snapshot, verdicts)


def run(ctx: JobContext, history: ScheduleHistory, params: ScheduleParams) -> JobResult:
    judged = judge_all(history, params, ctx.now())
    rows = [_row(v, params, judged.now) for v in judged.jobs]
    overdue = judged.overdue
    return JobResult(
        SUMMARY_TYPE,
        _message(rows, overdue),
        "critical" if overdue else "ok",
        ExitCode.CRITICAL if overdue else ExitCode.OK,
        {
            "jobs": rows,
            "grace": format_duration(params.grace),
            "overdue_jobs": overdue,
            "history_since": judged.snapshot.tables_created_at,
        },
        extra={"judged": judged},
    )


def _row(verdict: JobVerdict, params: ScheduleParams, now: datetime) -> dict[str, Any]:
    """One job's line; run times are start times, which is what a schedule is about."""
    past = verdict.history
    next_runs = (CronSchedule(verdict.cron).next_runs(now, params.next_count)
                 if verdict.cron else [])
    return {
        "job": verdict.job,
        "cron": verdict.cron,
        "next_runs": next_runs,
        "last_run_at": past.last_run.started_at if past.last_run else None,
        "last_success_at": past.last_success.started_at if past.last_success else None,
        "overdue": verdict.verdict.overdue,
        "due_at": verdict.verdict.due_at,
        "running": past.running,
    }


def _message(rows: list[dict[str, Any]], overdue: list[str]) -> str:
    scheduled = sum(1 for row in rows if row["cron"])
    if overdue:
        return f"{len(overdue)} of {scheduled} scheduled jobs overdue: {', '.join(overdue)}"
    return f"{scheduled} scheduled job{'s' if scheduled != 1 else ''}, none overdue"
