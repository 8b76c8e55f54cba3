"""``files.cleanup``: delete the stored files of expired exports and mark their rows.

The order of work is what makes a killed or failing run harmless: a row is marked
``expired`` only after its file is gone (deleted, or found missing), in one UPDATE per
batch, so a run stopped anywhere leaves at worst files already deleted whose rows a rerun
finds ``missing`` and marks. A refused or undeletable file never stops the run; its row is
left untouched so the next run tries again, and the run ends WARNING (exit 1).

The dry run walks the very same batches and asks the store what it *would* do, so its
counts (and its exit code) are the real run's, minus every write.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opsctl.domain.units import human_bytes, human_count
from opsctl.errors import StorageUnavailable
from opsctl.exit_codes import ExitCode
from opsctl.jobs import deletion_guard
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import ExpiredExport, ExpiredExports, FileOutcome, FileStore, Progress

JOB = "files.cleanup"
SUMMARY_TYPE = "export_file_cleanup_complete"
ERROR_TYPE = "export_file_cleanup_error"
# What a run "deleted", for the deletion guard's baseline: every candidate it handled.
BASELINE_FIELDS = ("deleted_count", "missing_count", "failed_count")


@dataclass(frozen=True)
class CleanupParams:
    batch_size: int = 500
    limit: int | None = None
    # Paths a dry run shows in the text view (JobResult.extra, never in JSON).
    sample_size: int = 20
    # Pause between batches ([files] batch_pause_ms), after the batch's rows are marked.
    batch_pause_ms: int = 0


@dataclass(frozen=True)
class CleanupPorts:
    exports: ExpiredExports
    store: FileStore
    guard: deletion_guard.DeletionGuard | None = None


@dataclass
class _Tally:
    deleted: int = 0
    missing: int = 0
    failed: int = 0
    bytes_freed: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.deleted + self.missing + self.failed

    @property
    def done(self) -> int:
        return self.deleted + self.missing

    def add(self, outcome: FileOutcome, sample_size: int) -> None:
        if outcome.state == "deleted":
            self.deleted += 1
            self.bytes_freed += outcome.size
        elif outcome.state == "missing":
            self.missing += 1
        else:
            self.failed += 1
        if len(self.sample) < sample_size:
            self.sample.append({"file_path": outcome.export.file_path,
                                "size": outcome.size, "state": outcome.state})


def run(ctx: JobContext, ports: CleanupPorts, params: CleanupParams) -> JobResult:
    started = ctx.now()
    # Database work runs on one worker thread, in order, so it overlaps the file work:
    # the next batch is fetched and the last one marked while this one's files go.
    with ThreadPoolExecutor(1, thread_name_prefix="files-cleanup-db") as db:
        candidates = db.submit(ports.exports.count, started).result()
        total = candidates if params.limit is None else min(candidates, params.limit)
        if deletion_guard.check(ctx, ports.guard, total) is not None:
            return _result(ctx, ports, params, candidates, _Tally(), None, False,
                           duration_ms=int((ctx.now() - started).total_seconds() * 1000),
                           tripped=True)
        progress = ctx.progress(
            "checking expired files" if ctx.dry_run else "deleting expired files", total,
            "files")
        try:
            tally, storage_error, interrupted = _walk(ctx, ports, params, db, started,
                                                      progress)
        finally:
            progress.close()
    if storage_error is not None and tally.done == 0:
        raise storage_error  # nothing was done: UNKNOWN (exit 3), one error event
    return _result(ctx, ports, params, candidates, tally, storage_error, interrupted,
                   duration_ms=int((ctx.now() - started).total_seconds() * 1000))


def _walk(
    ctx: JobContext,
    ports: CleanupPorts,
    params: CleanupParams,
    db: ThreadPoolExecutor,
    started: datetime,
    progress: Progress,
) -> tuple[_Tally, StorageUnavailable | None, bool]:
    """Batch after batch until done, the limit, a store failure or a stop request; returns
    the tally, the store failure if any, and whether a signal stopped the walk."""
    tally = _Tally()
    marking: Future[int] | None = None
    # `started` is the cutoff for the whole run: rows expiring meanwhile wait for the next
    # run, and the keyset walk (after the last row, in (expires_at, id) order) can never
    # meet a row twice.
    fetching = db.submit(ports.exports.batch, started, None, _next_size(params, 0))
    try:
        while True:
            rows = fetching.result()
            if not rows:
                return tally, None, False
            asked = _next_size(params, tally.handled)
            handled = tally.handled + len(rows)  # every row fetched ends up handled
            more = params.limit is None or handled < params.limit
            if more:
                fetching = db.submit(ports.exports.batch, started, rows[-1],
                                     _next_size(params, handled))
            done, storage_error = _one_batch(ctx, ports, rows, tally, params.sample_size)
            if done and not ctx.dry_run:
                if marking is not None:
                    marking.result()
                # Only rows whose file is gone, in one UPDATE, after the deletes.
                marking = db.submit(ports.exports.mark_expired, done)
            progress.advance(len(rows))
            if storage_error is not None or not more:
                return tally, storage_error, False
            # A short batch was the last one: no pause before the empty fetch.
            if (params.batch_pause_ms and len(rows) == asked
                    and _pause(ctx, params.batch_pause_ms, marking)):
                return tally, None, True
            if ctx.stop_requested:
                return tally, None, True
    finally:
        if marking is not None:
            marking.result()


def _pause(ctx: JobContext, pause_ms: int, marking: Future[int] | None) -> bool:
    """The throttle: the batch's UPDATE finishes first, so the pause is a real rest for
    the database; whether a stop request cut it short."""
    if marking is not None:
        marking.result()
    return ctx.pause(pause_ms / 1000)


def _next_size(params: CleanupParams, handled: int) -> int:
    if params.limit is None:
        return params.batch_size
    return min(params.batch_size, params.limit - handled)


def _one_batch(
    ctx: JobContext,
    ports: CleanupPorts,
    rows: list[ExpiredExport],
    tally: _Tally,
    sample_size: int,
) -> tuple[list[int], StorageUnavailable | None]:
    """Handle one batch: the ids whose file is gone, and the store's failure if it stopped
    answering midway (the chunks before it still count)."""
    done: list[int] = []
    readable = [row for row in rows if row.unreadable is None]
    if len(readable) < len(rows):
        for row in rows:
            if row.unreadable is not None:
                # A row that cannot be read is never a key to delete: report it, leave it.
                outcome = FileOutcome(row, "failed", 0, "unreadable_row", row.unreadable)
                tally.add(outcome, sample_size if ctx.dry_run else 0)
                _report_failure(ctx, outcome)
    try:
        for chunk in _chunks(readable, ports.store.max_chunk):
            outcomes = ports.store.check(chunk) if ctx.dry_run else ports.store.delete(chunk)
            for outcome in outcomes:
                tally.add(outcome, sample_size if ctx.dry_run else 0)
                if outcome.state == "failed":
                    _report_failure(ctx, outcome)
                else:
                    done.append(outcome.export.id)
    except StorageUnavailable as exc:
        return done, exc
    return done, None


def _chunks(rows: list[ExpiredExport], size: int) -> Iterator[list[ExpiredExport]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _report_failure(ctx: JobContext, outcome: FileOutcome) -> None:
    verb = "would refuse" if ctx.dry_run else "could not delete"
    ctx.emitter.emit(
        ERROR_TYPE,
        f"{verb} {outcome.export.file_path!r} (export {outcome.export.export_id}): "
        f"{outcome.error_message}",
        level="error",
        export_id=outcome.export.export_id,
        row_id=outcome.export.id,
        file_path=outcome.export.file_path,
        error={"kind": outcome.error_kind or "delete_failed",
               "message": outcome.error_message or "not deleted"},
        dry_run=ctx.dry_run,
    )


def _result(
    ctx: JobContext,
    ports: CleanupPorts,
    params: CleanupParams,
    candidates: int,
    tally: _Tally,
    storage_error: StorageUnavailable | None,
    interrupted: bool,
    *,
    duration_ms: int,
    tripped: bool = False,
) -> JobResult:
    fields: dict[str, Any] = {
        "dry_run": ctx.dry_run,
        "candidates": candidates,
        "deleted_count": tally.deleted,
        "missing_count": tally.missing,
        "failed_count": tally.failed,
        "bytes_freed": tally.bytes_freed,
        "duration_ms": duration_ms,
        "backend": ports.store.backend,
        "limit": params.limit,
    }
    if ports.guard is not None:
        fields["forced"] = deletion_guard.forced(ports.guard)
    trouble = tally.failed > 0 or storage_error is not None
    if storage_error is not None:
        fields["error"] = {"kind": storage_error.kind, "message": storage_error.message}
    stop_code = ctx.runtime.stop.exit_code
    if tripped:
        state, code = deletion_guard.TRIPPED_STATE, ExitCode.CRITICAL
    elif interrupted and stop_code is not None:
        state, code = "interrupted", stop_code
    elif ctx.dry_run:
        state, code = "dry_run", ExitCode.WARNING if trouble else ExitCode.OK
    else:
        state, code = ("partial", ExitCode.WARNING) if trouble else ("ok", ExitCode.OK)
    message = _message(ctx.dry_run, candidates, tally, state)
    if tripped:
        message = (f"files cleanup: the deletion guard stopped the run before any delete "
                   f"({human_count(candidates)} candidates)")
    if storage_error is not None:
        message += f"; stopped early: {storage_error.message}"
    return JobResult(SUMMARY_TYPE, message, state, code, fields,
                     extra={"sample": tally.sample})


def _message(dry_run: bool, candidates: int, tally: _Tally, state: str) -> str:
    verb = "would delete" if dry_run else "deleted"
    text = (f"{verb} {human_count(tally.deleted)} of {human_count(candidates)} expired "
            f"files ({human_bytes(tally.bytes_freed)}), {human_count(tally.missing)} missing, "
            f"{human_count(tally.failed)} failed")
    if state == "interrupted":
        return f"files cleanup interrupted: {text}"
    return f"files cleanup dry run: {text}" if dry_run else f"files cleanup: {text}"
