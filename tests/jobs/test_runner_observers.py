"""The runner tells its observers when a run starts and how it ends, and nothing about
them can change the run: in-memory observers and an in-memory bookkeeping."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from opsctl.errors import DatabaseUnavailable, Interrupted, LockHeld, OpsctlError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.result import JobResult
from opsctl.jobs.runner import JobSpec, execute
from opsctl.ports import RunEnd, RunRecord, RunStart
from opsctl.runtime import Runtime

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SPEC = JobSpec("files.cleanup", "export_file_cleanup_complete", mutating=True)


class FakeBookkeeping:
    def __init__(self, lock_held: bool = False) -> None:
        self.lock_held = lock_held
        self.locks: list[str] = []
        self.runs: list[RunRecord] = []

    def ensure_schema(self) -> None:
        pass

    @contextmanager
    def job_lock(self, job: str) -> Iterator[None]:
        if self.lock_held:
            raise LockHeld(f"another {job} run holds its lock")
        self.locks.append(job)
        yield

    def record_run(self, run: RunRecord) -> None:
        self.runs.append(run)

    def prune_runs(self, older_than: datetime) -> int:
        return 0


def setup() -> tuple[Runtime, Emitter, io.StringIO]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, clock=lambda: T0, run_id="r1")
    return runtime, Emitter(runtime, "files.cleanup", ("pw-123",)), out


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def ok_result(code: ExitCode = ExitCode.OK) -> JobResult:
    return JobResult("export_file_cleanup_complete", "done", "ok", code, {"deleted_count": 2})


@dataclass
class Recorder:
    """Remembers every call, in order, and what the bookkeeping had done by then."""

    bookkeeping: FakeBookkeeping | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def run_started(self, run: RunStart) -> None:
        locks = list(self.bookkeeping.locks) if self.bookkeeping else []
        self.calls.append(("start", (run, locks)))

    def run_ended(self, run: RunEnd) -> None:
        self.calls.append(("end", run))


class Exploding:
    def run_started(self, run: RunStart) -> None:
        raise RuntimeError("observer bug with pw-123 inside")

    def run_ended(self, run: RunEnd) -> None:
        raise OpsctlError("cannot reach anything")


def test_start_comes_after_the_lock_and_end_carries_the_outcome_before_the_last_line(
) -> None:
    runtime, emitter, out = setup()
    books = FakeBookkeeping()
    seen: list[str] = []
    recorder = Recorder(books)

    def work() -> JobResult:
        seen.append(f"work after {len(recorder.calls)} call(s)")
        return ok_result(ExitCode.WARNING)

    outcome = execute(SPEC, runtime, emitter, books, work, [recorder])

    assert outcome.exit_code == ExitCode.WARNING
    assert [name for name, _ in recorder.calls] == ["start", "end"]
    start, locks_at_start = recorder.calls[0][1]
    assert locks_at_start == ["files.cleanup"]
    assert start == RunStart("files.cleanup", "r1", runtime.host, runtime.clock())
    assert seen == ["work after 1 call(s)"]
    end: RunEnd = recorder.calls[1][1]
    assert (end.job, end.run_id, end.exit_code, end.state) == ("files.cleanup", "r1", 1, "ok")
    assert end.succeeded and not end.database_down
    # The end carries the run's last line, common fields included, exactly as printed.
    printed = events(out)[-1]
    assert dict(end.event) == printed


def test_a_failed_run_ends_with_its_error_event() -> None:
    runtime, emitter, out = setup()
    recorder = Recorder()

    def work() -> JobResult:
        raise DatabaseUnavailable("database at postgresql://u:pw-123@db/x refused")

    outcome = execute(SPEC, runtime, emitter, FakeBookkeeping(), work, [recorder])

    assert outcome.exit_code == ExitCode.UNKNOWN
    end: RunEnd = recorder.calls[-1][1]
    assert end.exit_code == 3 and end.state == "error" and not end.succeeded
    assert end.database_down
    assert end.event["type"] == "error"
    assert end.event["error"]["kind"] == "database_unavailable"
    assert "pw-123" not in json.dumps(end.event)
    assert dict(end.event) == events(out)[-1]


def test_a_run_that_fails_before_the_lock_ends_without_starting() -> None:
    runtime, emitter, _ = setup()
    recorder = Recorder()

    class SchemaDown(FakeBookkeeping):
        def ensure_schema(self) -> None:
            raise DatabaseUnavailable("refused")

    execute(SPEC, runtime, emitter, SchemaDown(), ok_result, [recorder])

    assert [name for name, _ in recorder.calls] == ["end"]


def test_a_dry_run_notifies_nothing() -> None:
    runtime, emitter, _ = setup()
    recorder = Recorder()
    spec = JobSpec("files.cleanup", "export_file_cleanup_complete", mutating=True,
                   dry_run=True)

    execute(spec, runtime, emitter, FakeBookkeeping(), ok_result, [recorder])

    assert recorder.calls == []


def test_a_run_skipped_by_the_lock_notifies_nothing() -> None:
    runtime, emitter, out = setup()
    recorder = Recorder()

    outcome = execute(SPEC, runtime, emitter, FakeBookkeeping(lock_held=True), ok_result,
                      [recorder])

    assert outcome.exit_code == ExitCode.SKIPPED
    assert recorder.calls == []
    assert events(out)[-1]["type"] == "job_skipped"


def test_an_observer_that_raises_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    runtime, emitter, out = setup()
    books = FakeBookkeeping()
    recorder = Recorder()

    outcome = execute(SPEC, runtime, emitter, books, ok_result, [Exploding(), recorder])

    assert outcome.exit_code == ExitCode.OK
    assert [name for name, _ in recorder.calls] == ["start", "end"]  # the next one still runs
    assert [e["type"] for e in events(out)] == ["export_file_cleanup_complete"]
    assert len(books.runs) == 1 and books.runs[0].exit_code == 0
    assert "pw-123" not in caplog.text and "Exploding failed" in caplog.text


def test_an_interrupted_run_ends_with_its_summary() -> None:
    runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={}, run_id="r2")
    emitter = Emitter(runtime, "files.cleanup")
    recorder = Recorder()

    def work() -> JobResult:
        raise Interrupted("SIGTERM", ExitCode.SIGTERM)

    outcome = execute(SPEC, runtime, emitter, FakeBookkeeping(), work, [recorder])

    end: RunEnd = recorder.calls[-1][1]
    assert end.exit_code == outcome.exit_code == 143
    assert end.state == "interrupted" and end.event["type"] == "export_file_cleanup_complete"
