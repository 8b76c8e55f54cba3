"""``runs list`` as a plain job, with an in-memory fake of the history port."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsctl.errors import UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import runs_list
from opsctl.jobs.context import JobContext
from opsctl.jobs.runs_list import ListParams, one_line
from opsctl.ports import JobRunTotals, RunRecord
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def record(job: str = "files.cleanup", **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "job": job, "run_id": "run-1", "host": "cron-1",
        "started_at": NOW - timedelta(minutes=10),
        "finished_at": NOW - timedelta(minutes=10) + timedelta(milliseconds=1250),
        "state": "ok", "exit_code": 0, "duration_ms": 1250,
        "summary": {"deleted_count": 3, "bytes_freed": 2048, "state": "ok", "exit_code": 0},
        "error": None,
    }
    values.update(overrides)
    return RunRecord(**values)


class FakeHistory:
    def __init__(self, *runs: RunRecord) -> None:
        self.runs = list(runs)
        self.asked: list[dict[str, Any]] = []

    def recent_runs(self, *, job: str | None, since: datetime | None,
                    limit: int) -> list[RunRecord]:
        self.asked.append({"job": job, "since": since, "limit": limit})
        return self.runs[:limit]

    def job_totals(self, since: datetime, success_exit_codes: frozenset[int]) -> list[JobRunTotals]:
        raise AssertionError("runs list must not aggregate")


def context() -> tuple[JobContext, io.StringIO]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, clock=lambda: NOW,
                      run_id="invocation-1")
    return JobContext("runs.list", runtime, Emitter(runtime)), out


def test_each_run_is_an_event_of_its_own_job_and_the_summary_counts_them() -> None:
    ctx, out = context()
    failed = record("logs.cleanup", run_id="run-2", state="error", exit_code=3,
                    summary={}, error={"kind": "database_unavailable", "message": "refused"})
    history = FakeHistory(failed, record())
    result = runs_list.run(ctx, history, ListParams(job=None, limit=5,
                                                    since=timedelta(hours=2)))

    assert history.asked == [{"job": None, "since": NOW - timedelta(hours=2), "limit": 5}]
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    own = {k: v for k, v in first.items() if k not in (
        "timestamp", "message", "logger", "host", "version")}
    assert own == {
        "level": "info", "type": "job_run", "job": "logs.cleanup", "run_id": "invocation-1",
        "job_run_id": "run-2", "job_host": "cron-1",
        "started_at": "2026-11-23T11:50:00.000Z", "finished_at": "2026-11-23T11:50:01.250Z",
        "duration_ms": 1250, "state": "error", "job_exit_code": 3,
        "summary": "database_unavailable: refused",
        "error": {"kind": "database_unavailable", "message": "refused"},
    }
    assert first["message"] == "logs.cleanup error (exit 3) in 1.2 s, started 2026-11-23 11:50:00Z"
    assert (second["job"], second["summary"], "error" in second) == (
        "files.cleanup", "deleted_count=3, bytes_freed=2048", False)
    assert (result.summary_type, result.state, result.exit_code) == (
        "job_runs_listed", "ok", ExitCode.OK)
    assert result.summary() == {"count": 2, "limit": 5, "job_filter": None,
                                "since": NOW - timedelta(hours=2), "state": "ok",
                                "exit_code": 0}
    assert result.message == "2 recorded runs in the last 2h"
    assert [row["job"] for row in result.extra["runs"]] == ["logs.cleanup", "files.cleanup"]


def test_no_runs_is_ok() -> None:
    ctx, out = context()
    result = runs_list.run(ctx, FakeHistory(), ListParams(job="health.probe"))
    assert out.getvalue() == ""
    assert (result.exit_code, result.fields["count"], result.fields["since"]) == (
        ExitCode.OK, 0, None)
    assert result.message == "0 recorded runs of health.probe"


@pytest.mark.parametrize("params", [ListParams(job="files-cleanup"), ListParams(limit=0)])
def test_bad_parameters_are_usage_errors(params: ListParams) -> None:
    ctx, _ = context()
    with pytest.raises(UsageError):
        runs_list.run(ctx, FakeHistory(), params)


def test_one_line_summary_leaves_out_nested_values_and_bookkeeping() -> None:
    run = record(summary={"total": 120, "by_format": {"csv": 3}, "failure_rate": 0.123456,
                          "top_error_types": [], "note": None, "dry_run": False,
                          "state": "ok", "exit_code": 0})
    assert one_line(run) == "total=120, failure_rate=0.1235"


def test_one_line_summary_is_one_line_and_bounded() -> None:
    run = record(error={"kind": "internal", "message": "boom\n  " + "x" * 300})
    text = one_line(run)
    assert "\n" not in text
    assert len(text) == runs_list.SUMMARY_WIDTH
    assert text.startswith("internal: boom xxx") and text.endswith("…")
