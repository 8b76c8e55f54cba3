"""The ``freshness`` check: has ``job`` succeeded recently enough?

cron failing silently (a broken crontab, a host that went away, a job that always exits 3)
is invisible to the job itself; only someone looking at the history from outside notices.

A run counts as a success when the job did its work and judged it: exit 0, 1 or 2, as in
``runs stats``. A failure-rate check raising its alert (2) or a cleanup with a few failed
files (1) is the job working; 3 (could not judge), 78 or an interrupted run is not. This is
also what lets a probe watch itself: were only exit 0 a success, a probe that turned
unhealthy for longer than ``max_age`` would stay unhealthy for ever.

The query walks the ``(job, finished_at)`` index backwards and stops at the first success,
so it stays cheap however long the history is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import inspect, select

from opsctl.adapters.checks.database import connect_within
from opsctl.adapters.db import tables
from opsctl.domain.durations import format_duration
from opsctl.events import rfc3339
from opsctl.exit_codes import JOB_SUCCEEDED
from opsctl.ports import CheckFinding

# OK, WARNING, CRITICAL: the job ran and judged (the same rule as ``runs stats``).
SUCCESS_EXIT_CODES = sorted(JOB_SUCCEEDED)


@dataclass(frozen=True)
class FreshnessProbe:
    url: str
    connect_timeout_s: float
    job: str
    max_age: timedelta
    clock: Callable[[], datetime]

    def check(self, timeout_s: float) -> CheckFinding:
        db = connect_within(self.url, self.connect_timeout_s, timeout_s)
        if db.sqlite_path is not None and not db.sqlite_path.exists():
            return self._never()  # no database yet: certainly no run
        runs = tables.runs
        query = (
            select(runs.c.finished_at)
            .where(runs.c.job == self.job, runs.c.exit_code.in_(SUCCESS_EXIT_CODES))
            .order_by(runs.c.finished_at.desc())
            .limit(1)
        )
        try:
            with db.connect() as conn:
                has_history = inspect(conn).has_table(runs.name)
                last = conn.execute(query).scalar_one_or_none() if has_history else None
        finally:
            db.dispose()
        if last is None:
            return self._never()
        age = self.clock() - last
        detail = {"job": self.job, "last_success_at": rfc3339(last),
                  "age_s": round(age.total_seconds()), "max_age_s": self.max_age.total_seconds()}
        if age > self.max_age:
            return CheckFinding(
                "critical", "stale",
                f"{self.job} last succeeded {format_duration(age)} ago "
                f"(max_age {format_duration(self.max_age)})", detail)
        return CheckFinding(detail=detail)

    def _never(self) -> CheckFinding:
        return CheckFinding("critical", "never_run",
                            f"{self.job} has no successful run in the history",
                            {"job": self.job, "max_age_s": self.max_age.total_seconds()})


@dataclass(frozen=True)
class ScheduleProbe:
    """``max_age = "schedule"``: critical exactly when the job is overdue by its schedule,
    the rule ``schedule show`` and ``status`` apply (a running job is never overdue)."""

    url: str
    connect_timeout_s: float
    job: str
    cron: str
    grace: timedelta
    clock: Callable[[], datetime]

    def check(self, timeout_s: float) -> CheckFinding:
        from opsctl.adapters.db.job_status import DbJobStatus
        from opsctl.domain.schedules import START_TOLERANCE, CronSchedule, judge

        now = self.clock()
        schedule = CronSchedule(self.cron)
        due = schedule.latest_before(now - self.grace)
        since = {self.job: due - START_TOLERANCE} if due is not None else {}
        source = DbJobStatus(connect_within(self.url, self.connect_timeout_s, timeout_s))
        try:
            snapshot = source.snapshot([self.job], JOB_SUCCEEDED, since)
        finally:
            source.close()
            source.db.dispose()
        past = snapshot.jobs[self.job]
        verdict = judge(schedule, self.grace, now,
                        last_success_started_at=past.success_started_since,
                        ever_succeeded=past.last_success is not None, running=past.running,
                        history_started_at=snapshot.tables_created_at)
        success = past.last_success
        detail = {"job": self.job, "cron": self.cron, "overdue": verdict.overdue,
                  "due_at": rfc3339(verdict.due_at) if verdict.due_at else None,
                  "last_success_at": rfc3339(success.started_at) if success else None,
                  "running": past.running}
        if verdict.overdue:
            return CheckFinding(
                "critical", "overdue",
                f"{self.job} is overdue: no successful run since its {rfc3339(verdict.due_at)} "
                f"start ({self.cron}, grace {format_duration(self.grace)})"
                if verdict.due_at else f"{self.job} is overdue", detail)
        return CheckFinding(detail=detail)
