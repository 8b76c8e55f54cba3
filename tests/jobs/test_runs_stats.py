"""``runs stats`` as a plain job: alert rules at their edges, events, exit codes.

The history port is an in-memory fake that hands back the totals a test crafts; the SQL
that computes them is tested against real databases in tests/adapters/test_run_history.py.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import runs_stats
from opsctl.jobs.context import JobContext
from opsctl.jobs.runs_stats import AlertRules, StatsParams, reasons
from opsctl.ports import JobRunTotals, RunRecord
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = AlertRules()  # the [runs] defaults: > 50 % of >= 5 runs, 3 in a row, avg > 5m


def totals(job: str = "files.cleanup", **overrides: Any) -> JobRunTotals:
    values: dict[str, Any] = {
        "job": job, "runs": 10, "failed": 0, "avg_duration_ms": 1000.0,
        "p95_duration_ms": 1900.0, "last_run_at": NOW - timedelta(minutes=5),
        "last_state": "ok", "last_exit_code": 0,
        "last_success_at": NOW - timedelta(minutes=5), "consecutive_failures": 0,
    }
    values.update(overrides)
    return JobRunTotals(**values)


class FakeHistory:
    def __init__(self, *jobs: JobRunTotals) -> None:
        self.jobs = list(jobs)
        self.asked: list[tuple[datetime, frozenset[int]]] = []

    def recent_runs(self, *, job: str | None, since: datetime | None,
                    limit: int) -> list[RunRecord]:
        raise AssertionError("runs stats must not list runs")

    def job_totals(self, since: datetime, success_exit_codes: frozenset[int]) -> list[JobRunTotals]:
        self.asked.append((since, success_exit_codes))
        return self.jobs


def context() -> tuple[JobContext, io.StringIO]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, clock=lambda: NOW,
                      run_id="invocation-1")
    return JobContext("runs.stats", runtime, Emitter(runtime)), out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


# --- the alert rules, each at its threshold -----------------------------------------------


@pytest.mark.parametrize(
    ("runs", "failed", "expected"),
    [
        (10, 5, []),  # exactly 50 % is not "more than" 50 %
        (10, 6, ["failure_rate"]),
        (5, 3, ["failure_rate"]),  # 60 % at exactly alert_min_runs
        (4, 3, []),  # 75 %, but below alert_min_runs
        (4, 4, []),  # even all failed: too few runs to judge a rate (the streak rule is off)
    ],
)
def test_failure_rate_rule_needs_more_than_the_rate_and_enough_runs(
    runs: int, failed: int, expected: list[str]
) -> None:
    # Streak kept below its threshold so only the rate rule is under test.
    assert reasons(totals(runs=runs, failed=failed, consecutive_failures=2), RULES) == expected


@pytest.mark.parametrize(("streak", "expected"), [(2, []), (3, ["consecutive_failures"]),
                                                   (7, ["consecutive_failures"])])
def test_streak_rule_alerts_at_three_in_a_row(streak: int, expected: list[str]) -> None:
    assert reasons(totals(runs=20, failed=streak, consecutive_failures=streak),
                   RULES) == expected


@pytest.mark.parametrize(("avg_ms", "expected"), [(300_000.0, []), (300_000.5, ["avg_duration"]),
                                                  (None, [])])
def test_duration_rule_needs_an_average_above_five_minutes(
    avg_ms: float | None, expected: list[str]
) -> None:
    assert reasons(totals(avg_duration_ms=avg_ms), RULES) == expected


def test_rules_come_from_configuration_and_reasons_keep_a_fixed_order() -> None:
    strict = AlertRules(failure_rate=0.1, min_runs=2, consecutive_failures=1,
                        max_avg_duration=timedelta(seconds=1))
    job = totals(runs=2, failed=1, consecutive_failures=1, avg_duration_ms=1001.0)
    assert reasons(job, strict) == ["failure_rate", "consecutive_failures", "avg_duration"]
    assert reasons(job, RULES) == []


# --- the job ------------------------------------------------------------------------------


def test_one_event_per_job_then_an_ok_summary() -> None:
    ctx, out = context()
    history = FakeHistory(
        totals("failure-rate.check", runs=8, failed=1, avg_duration_ms=1234.56,
               p95_duration_ms=2222.25, consecutive_failures=0, last_exit_code=2,
               last_state="alert"),
        totals("logs.cleanup", runs=1, failed=0, last_success_at=None),
    )
    result = runs_stats.run(ctx, history, StatsParams(window=timedelta(days=7), rules=RULES))

    assert history.asked == [(NOW - timedelta(days=7), frozenset({0, 1, 2}))]
    first, second = lines(out)
    assert {k: first[k] for k in ("type", "job", "run_id", "level")} == {
        "type": "job_run_stats", "job": "failure-rate.check", "run_id": "invocation-1",
        "level": "info"}
    assert {k: v for k, v in first.items() if k not in (
        "timestamp", "level", "message", "logger", "type", "job", "run_id", "host",
        "version")} == {
        "runs": 8, "succeeded": 7, "failed": 1, "success_rate": 0.875,
        "avg_duration_ms": 1234.6, "p95_duration_ms": 2222.2,
        "last_run_at": "2026-11-23T11:55:00.000Z", "last_state": "alert", "last_exit_code": 2,
        "last_success_at": "2026-11-23T11:55:00.000Z", "consecutive_failures": 0,
        "state": "ok", "reasons": [],
    }
    assert (second["job"], second["last_success_at"]) == ("logs.cleanup", None)
    assert "status" not in first and "exit_code" not in first
    assert (result.summary_type, result.state, result.exit_code) == (
        "job_run_stats_summary", "ok", ExitCode.OK)
    assert result.summary() == {
        "window": "7d", "window_start": NOW - timedelta(days=7), "window_end": NOW,
        "jobs": 2, "jobs_in_alert": 0, "alert_jobs": [],
        "alert_failure_rate": 0.5, "alert_min_runs": 5, "alert_consecutive_failures": 3,
        "alert_max_avg_duration_ms": 300_000.0, "state": "ok", "exit_code": 0,
    }
    assert result.message == "2 jobs ok over the last 7d"


def test_any_job_in_alert_makes_the_run_critical() -> None:
    ctx, out = context()
    history = FakeHistory(
        totals("files.cleanup", runs=6, failed=4, consecutive_failures=3),
        totals("health.probe"),
        totals("logs.cleanup", avg_duration_ms=360_000.0),
    )
    result = runs_stats.run(ctx, history, StatsParams(window=timedelta(hours=36), rules=RULES))

    events = {e["job"]: e for e in lines(out)}
    assert events["files.cleanup"]["state"] == "alert"
    assert events["files.cleanup"]["reasons"] == ["failure_rate", "consecutive_failures"]
    assert events["files.cleanup"]["level"] == "error"
    assert events["files.cleanup"]["message"] == (
        "files.cleanup: alert: 66.7 % of 6 runs failed (> 50.0 %); "
        "last 3 runs failed (>= 3 in a row)")
    assert (events["health.probe"]["state"], events["health.probe"]["reasons"]) == ("ok", [])
    assert events["logs.cleanup"]["reasons"] == ["avg_duration"]
    assert events["logs.cleanup"]["message"] == "logs.cleanup: alert: average 6m 00s (> 5m 00s)"
    assert (result.state, result.exit_code) == ("alert", ExitCode.CRITICAL)
    assert {k: result.fields[k] for k in ("window", "jobs", "jobs_in_alert", "alert_jobs")} == {
        "window": "1d12h", "jobs": 3, "jobs_in_alert": 2,
        "alert_jobs": ["files.cleanup", "logs.cleanup"]}


def test_empty_history_is_a_valid_ok_answer() -> None:
    ctx, out = context()
    result = runs_stats.run(ctx, FakeHistory(), StatsParams(window=timedelta(days=7)))
    assert out.getvalue() == ""
    assert (result.state, result.exit_code, result.fields["jobs"]) == ("ok", ExitCode.OK, 0)
    assert result.message == "no runs recorded in the last 7d"


def test_success_rate_rounds_but_the_rule_judges_the_exact_rate() -> None:
    # 2 of 3 failed: 0.6666... > 0.66 although it prints as 0.3333 succeeded.
    job = totals(runs=3, failed=2, consecutive_failures=0)
    rules = replace(RULES, failure_rate=0.66, min_runs=3)
    ctx, out = context()
    runs_stats.run(ctx, FakeHistory(job), StatsParams(rules=rules))
    (event,) = lines(out)
    assert (event["success_rate"], event["reasons"]) == (0.3333, ["failure_rate"])
