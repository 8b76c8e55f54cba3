"""The wrapper around every job run.

It is the single place that guarantees what cron depends on: the schema exists, the lock
is held for the whole run, exactly one summary or ``error`` event ends the run, the run is
recorded in history (never in dry run), and old history is pruned. It is also the one
place that tells the run's observers (heartbeats, Prometheus) that it started and how it
ended.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opsctl.errors import DatabaseUnavailable, Interrupted, LockHeld, OpsctlError
from opsctl.events import Emitter, rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.result import JobResult
from opsctl.ports import RunBookkeeping, RunEnd, RunObserver, RunRecord, RunStart
from opsctl.runtime import Runtime

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class JobSpec:
    name: str
    summary_type: str
    mutating: bool = False  # takes the job lock
    cooperative: bool = False  # checks runtime.stop between batches
    dry_run: bool = False
    history_retention: timedelta = timedelta(days=90)
    # For a read-only job whose findings matter most when the database is down
    # (health.probe): the schema is ensured at recording time instead of before the work,
    # so a failing database is reported by the job itself instead of ending it with exit 3.
    bookkeeping_optional: bool = False


@dataclass(frozen=True)
class JobOutcome:
    exit_code: ExitCode
    result: JobResult | None = None
    error: OpsctlError | None = None


def execute(
    spec: JobSpec,
    runtime: Runtime,
    emitter: Emitter,
    bookkeeping: RunBookkeeping,
    work: Callable[[], JobResult],
    observers: Sequence[RunObserver] = (),
) -> JobOutcome:
    started = runtime.clock()
    watch = _Watch(spec, runtime, emitter, started, () if spec.dry_run else tuple(observers))
    outcome = _run(spec, runtime, emitter, bookkeeping, work, watch)
    unreachable = isinstance(outcome.error, DatabaseUnavailable) and not outcome.error.answered
    if spec.dry_run or unreachable or isinstance(outcome.error, LockHeld):
        # Nothing to record, or nowhere to record it: another connect timeout would only
        # delay the exit cron is waiting for. A database that answered with an error (a
        # missing source table, a failed statement) is reachable: that run is recorded.
        return outcome
    if outcome.result is not None and outcome.result.database_down:
        return outcome
    # When the last line was written: the time observers reported too, so the last success
    # Prometheus shows and the one run history keeps are the same instant.
    finished = watch.finished or runtime.clock()
    record = RunRecord(
        job=spec.name,
        run_id=runtime.run_id,
        host=runtime.host,
        started_at=started,
        finished_at=finished,
        state=outcome.result.state if outcome.result else "error",
        exit_code=int(outcome.exit_code),
        duration_ms=int((finished - started).total_seconds() * 1000),
        summary=emitter.redactor.value(outcome.result.summary()) if outcome.result else {},
        error=_error_object(outcome.error, emitter) if outcome.error else None,
    )
    try:
        if spec.bookkeeping_optional:
            bookkeeping.ensure_schema()
        bookkeeping.record_run(record)
        bookkeeping.prune_runs(finished - spec.history_retention)
    except OpsctlError as exc:
        # The run itself is over and reported; failing to remember it must not change
        # the exit code cron acts on.
        log.warning("could not record the run in history: %s", emitter.redactor.text(str(exc)))
    return outcome


def _run(
    spec: JobSpec,
    runtime: Runtime,
    emitter: Emitter,
    bookkeeping: RunBookkeeping,
    work: Callable[[], JobResult],
    watch: _Watch,
) -> JobOutcome:
    try:
        with runtime.stop.installed(cooperative=spec.cooperative):
            if not spec.dry_run and not spec.bookkeeping_optional:
                bookkeeping.ensure_schema()
            lock: AbstractContextManager[None] = (
                bookkeeping.job_lock(spec.name)
                if spec.mutating and not spec.dry_run
                else nullcontext()
            )
            with lock:
                runtime.stop.raise_if_requested()
                watch.started()
                result = work()
        outcome = JobOutcome(result.exit_code, result=result)
        watch.last_line(outcome, result.summary_type, result.message, result.level,
                        result.summary())
        return outcome
    except LockHeld as exc:
        runtime.stop.settle()
        emitter.emit("job_skipped", f"{spec.name} skipped: {exc}", level="warning",
                     reason=str(exc), state="skipped", exit_code=int(exc.exit_code))
        return JobOutcome(exc.exit_code, error=exc)
    except Interrupted as exc:
        # The contract wants the summary even when a signal cut the job short.
        result = JobResult(spec.summary_type, f"{spec.name} interrupted", "interrupted",
                           exc.exit_code, {"error": _error_object(exc, emitter)})
        outcome = JobOutcome(exc.exit_code, result=result, error=exc)
        watch.last_line(outcome, result.summary_type, result.message, "error",
                        result.summary())
        return outcome
    except OpsctlError as exc:
        return _fail(exc, runtime, watch)
    except Exception as exc:
        # A bug, not a finding: still one error event and no traceback on stdout.
        log.debug("unexpected failure", exc_info=True)
        internal = OpsctlError(f"internal error: {type(exc).__name__}: {exc}")
        internal.kind = "internal"
        if runtime.debug:
            runtime.stderr.write(traceback.format_exc())
        return _fail(internal, runtime, watch)


def _fail(exc: OpsctlError, runtime: Runtime, watch: _Watch) -> JobOutcome:
    if runtime.debug and exc.__cause__ is not None:
        runtime.stderr.write("".join(traceback.format_exception(exc.__cause__)))
    emitter = watch.emitter
    outcome = JobOutcome(exc.exit_code, error=exc)
    watch.last_line(outcome, "error", emitter.redactor.text(exc.message), "error",
                    {"error": _error_object(exc, emitter), "state": "error",
                     "exit_code": int(exc.exit_code)})
    return outcome


def _error_object(exc: OpsctlError, emitter: Emitter) -> dict[str, str]:
    return {"kind": exc.kind, "message": emitter.redactor.text(exc.message)}


class _Watch:
    """Tells the run's observers that it started (lock held) and how it ended (just before
    its last line). An observer that raises is logged and forgotten: watching a run must
    never change how the run ends."""

    def __init__(self, spec: JobSpec, runtime: Runtime, emitter: Emitter, started: datetime,
                 observers: tuple[RunObserver, ...]) -> None:
        self.spec, self.runtime, self.emitter = spec, runtime, emitter
        self.began = started
        self.observers = observers
        self.finished: datetime | None = None

    def started(self) -> None:
        if self.observers:
            run = RunStart(self.spec.name, self.runtime.run_id, self.runtime.host,
                           self.runtime.clock())
            self._notify(lambda observer: observer.run_started(run))

    def last_line(self, outcome: JobOutcome, type_: str, message: str, level: str,
                  fields: dict[str, Any]) -> None:
        # The outcome is decided: whatever signal follows, this line is what the run says.
        self.runtime.stop.settle()
        self.finished = self.runtime.clock()
        if self.observers and not isinstance(outcome.error, LockHeld):
            self._ended(outcome, type_, message, level, fields)
        self.emitter.emit(type_, message, level=level, **fields)

    def _ended(self, outcome: JobOutcome, type_: str, message: str, level: str,
               fields: dict[str, Any]) -> None:
        runtime = self.runtime
        now = self.finished or runtime.clock()
        event = self.emitter.redactor.value({
            "timestamp": rfc3339(now), "level": level, "message": message,
            "logger": f"opsctl.{self.spec.name}", "type": type_, "job": self.spec.name,
            "run_id": runtime.run_id, "host": runtime.host, "version": runtime.version,
            **fields,
        })
        result = outcome.result
        run = RunEnd(
            job=self.spec.name, run_id=runtime.run_id, host=runtime.host,
            started_at=self.began, finished_at=now,
            state=str(fields.get("state", "error")), exit_code=int(outcome.exit_code),
            event=event, details=result.extra if result is not None else {},
            database_down=isinstance(outcome.error, DatabaseUnavailable)
            or (result is not None and result.database_down),
        )
        self._notify(lambda observer: observer.run_ended(run))

    def _notify(self, call: Callable[[RunObserver], None]) -> None:
        for observer in self.observers:
            try:
                call(observer)
            except Exception as exc:
                log.warning("%s failed: %s", type(observer).__name__,
                            self.emitter.redactor.text(str(exc)))
