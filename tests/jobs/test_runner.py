"""The runner's guarantees, with an in-memory fake of the bookkeeping port."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from opsctl.errors import DatabaseUnavailable, LockHeld
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.result import JobResult
from opsctl.jobs.runner import JobSpec, execute
from opsctl.ports import RunRecord
from opsctl.runtime import Runtime

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class FakeBookkeeping:
    def __init__(self, lock_held: bool = False, record_fails: bool = False) -> None:
        self.lock_held = lock_held
        self.record_fails = record_fails
        self.schema_calls = 0
        self.locks: list[str] = []
        self.runs: list[RunRecord] = []
        self.pruned_before: list[datetime] = []

    def ensure_schema(self) -> None:
        self.schema_calls += 1

    @contextmanager
    def job_lock(self, job: str) -> Iterator[None]:
        if self.lock_held:
            raise LockHeld(f"another {job} run holds its lock")
        self.locks.append(job)
        yield

    def record_run(self, run: RunRecord) -> None:
        if self.record_fails:
            raise DatabaseUnavailable("gone")
        self.runs.append(run)

    def prune_runs(self, older_than: datetime) -> int:
        self.pruned_before.append(older_than)
        return 0


class Clock:
    """Time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def setup() -> tuple[Runtime, Emitter, io.StringIO]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, clock=Clock(), run_id="r1")
    return runtime, Emitter(runtime, "files.cleanup", ("pw-123",)), out


def events(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def ok_result(code: ExitCode = ExitCode.OK) -> JobResult:
    return JobResult("export_file_cleanup_complete", "done", "ok", code, {"deleted_count": 2})


SPEC = JobSpec("files.cleanup", "export_file_cleanup_complete", mutating=True)


def test_success_emits_one_summary_records_the_run_and_prunes() -> None:
    runtime, emitter, out = setup()
    books = FakeBookkeeping()

    def work() -> JobResult:
        runtime.clock.now += timedelta(milliseconds=1500)  # type: ignore[attr-defined]
        return ok_result()

    outcome = execute(SPEC, runtime, emitter, books, work)
    assert outcome.exit_code == ExitCode.OK
    [summary] = events(out)
    assert summary["type"] == "export_file_cleanup_complete"
    assert (summary["state"], summary["exit_code"], summary["deleted_count"]) == ("ok", 0, 2)
    assert books.schema_calls == 1 and books.locks == ["files.cleanup"]
    [run] = books.runs
    assert (run.job, run.run_id, run.state, run.exit_code) == ("files.cleanup", "r1", "ok", 0)
    assert run.duration_ms == 1500 and run.summary["deleted_count"] == 2
    assert books.pruned_before == [run.finished_at - timedelta(days=90)]


def test_warning_exit_code_is_kept_and_logged_as_warning() -> None:
    runtime, emitter, out = setup()
    outcome = execute(SPEC, runtime, emitter, FakeBookkeeping(), lambda: ok_result(ExitCode.WARNING))
    assert outcome.exit_code == ExitCode.WARNING
    assert events(out)[0]["level"] == "warning"


def test_dry_run_takes_no_lock_touches_no_schema_and_records_nothing() -> None:
    runtime, emitter, out = setup()
    books = FakeBookkeeping()
    spec = JobSpec("files.cleanup", "export_file_cleanup_complete", mutating=True, dry_run=True)
    assert execute(spec, runtime, emitter, books, ok_result).exit_code == ExitCode.OK
    assert (books.schema_calls, books.locks, books.runs) == (0, [], [])


def test_lock_held_emits_job_skipped_and_exits_75_without_running() -> None:
    runtime, emitter, out = setup()
    ran: list[bool] = []

    def work() -> JobResult:
        ran.append(True)
        return ok_result()

    books = FakeBookkeeping(lock_held=True)
    outcome = execute(SPEC, runtime, emitter, books, work)
    assert outcome.exit_code == ExitCode.SKIPPED == 75
    [event] = events(out)
    assert event["type"] == "job_skipped" and event["exit_code"] == 75 and event["reason"]
    assert ran == [] and books.runs == []


def test_dependency_failure_ends_with_one_error_event_and_exit_3() -> None:
    runtime, emitter, out = setup()

    def work() -> JobResult:
        raise DatabaseUnavailable("database unavailable (postgresql://u:pw-123@h/db): refused")

    books = FakeBookkeeping()
    outcome = execute(SPEC, runtime, emitter, books, work)
    assert outcome.exit_code == 3
    [event] = events(out)
    assert event["type"] == "error" and event["exit_code"] == 3
    assert event["error"] == {"kind": "database_unavailable",
                              "message": "database unavailable (postgresql://u:***@h/db): refused"}
    assert "pw-123" not in out.getvalue()
    # With the database gone there is nowhere to record the run; trying would only cost
    # another connect timeout.
    assert books.runs == []


def test_a_bug_is_an_internal_error_event_not_a_traceback() -> None:
    runtime, emitter, out = setup()

    def work() -> JobResult:
        raise ZeroDivisionError("division by zero")

    outcome = execute(SPEC, runtime, emitter, FakeBookkeeping(), work)
    assert outcome.exit_code == 3
    [event] = events(out)
    assert event["error"]["kind"] == "internal"  # type: ignore[index]
    assert "Traceback" not in out.getvalue() + runtime.stderr.getvalue()  # type: ignore[attr-defined]


def test_failing_to_record_history_does_not_change_the_exit_code() -> None:
    runtime, emitter, out = setup()
    outcome = execute(SPEC, runtime, emitter, FakeBookkeeping(record_fails=True), ok_result)
    assert outcome.exit_code == ExitCode.OK


def test_sigterm_during_a_short_job_still_writes_the_summary_with_143() -> None:
    runtime, emitter, out = setup()

    def work() -> JobResult:
        signal.raise_signal(signal.SIGTERM)
        raise AssertionError("not reached: a non-cooperative job is interrupted at once")

    books = FakeBookkeeping()
    outcome = execute(SPEC, runtime, emitter, books, work)
    assert outcome.exit_code == ExitCode.SIGTERM == 143
    [summary] = events(out)
    assert summary["type"] == "export_file_cleanup_complete"
    assert (summary["state"], summary["exit_code"]) == ("interrupted", 143)
    assert books.runs[0].state == "interrupted"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_cooperative_job_sees_the_request_and_finishes_its_batch() -> None:
    runtime, emitter, out = setup()
    spec = JobSpec("logs.cleanup", "export_log_cleanup_complete", mutating=True,
                   cooperative=True)

    def work() -> JobResult:
        signal.raise_signal(signal.SIGINT)
        assert runtime.stop.requested
        return JobResult("export_log_cleanup_complete", "stopped", "interrupted",
                         runtime.stop.exit_code or ExitCode.OK, {"deleted_count": 5})

    outcome = execute(spec, runtime, emitter, FakeBookkeeping(), work)
    assert outcome.exit_code == 130
    assert events(out)[0]["deleted_count"] == 5


@pytest.mark.parametrize("code", list(ExitCode))
def test_result_level_matches_exit_code(code: ExitCode) -> None:
    expected = {0: "info", 1: "warning"}.get(int(code), "error")
    assert JobResult("t", "m", "s", code).level == expected


# --- bookkeeping_optional (health.probe) -------------------------------------------------


class SchemaOrder(FakeBookkeeping):
    """Records when the schema is ensured relative to the work, or fails like a dead DB."""

    def __init__(self, down: bool = False) -> None:
        super().__init__(record_fails=down)
        self.down = down
        self.calls: list[str] = []

    def ensure_schema(self) -> None:
        self.calls.append("schema")
        if self.down:
            raise DatabaseUnavailable("database unavailable: connection refused")


PROBE_SPEC = JobSpec("health.probe", "health_probe", bookkeeping_optional=True)


def test_optional_bookkeeping_lets_the_job_report_a_dead_database_itself() -> None:
    runtime, emitter, out = setup()
    books = SchemaOrder(down=True)

    def work() -> JobResult:
        books.calls.append("work")
        return JobResult("health_probe", "unhealthy", "unhealthy", ExitCode.CRITICAL)

    outcome = execute(PROBE_SPEC, runtime, emitter, books, work)

    assert outcome.exit_code == ExitCode.CRITICAL
    [summary] = events(out)
    assert (summary["type"], summary["state"], summary["exit_code"]) == (
        "health_probe", "unhealthy", 2)
    assert books.calls == ["work", "schema"]  # schema only when recording, after the work
    assert books.runs == []


def test_optional_bookkeeping_still_ensures_the_schema_and_records_the_run() -> None:
    runtime, emitter, out = setup()
    books = SchemaOrder()

    def work() -> JobResult:
        books.calls.append("work")
        return JobResult("health_probe", "healthy", "healthy", ExitCode.OK)

    execute(PROBE_SPEC, runtime, emitter, books, work)

    assert books.calls == ["work", "schema"]
    assert [(r.job, r.state, r.exit_code) for r in books.runs] == [
        ("health.probe", "healthy", 0)]
