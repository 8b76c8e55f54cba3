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
from dataclasses import dataclass, field
from typing import Any

from opsctl.domain.units import human_bytes, human_count
from opsctl.errors import StorageUnavailable
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import ExpiredExport, ExpiredExports, FileOutcome, FileStore

JOB = "files.cleanup"
SUMMARY_TYPE = "export_file_cleanup_complete"
ERROR_TYPE = "export_file_cleanup_error"


@dataclass(frozen=True)
class CleanupParams:
    batch_size: int = 500
    limit: int | None = None
    # Paths a dry run shows in the text view (JobResult.extra, never in JSON).
    sample_size: int = 20


@dataclass(frozen=True)
class CleanupPorts:
    exports: ExpiredExports
    store: FileStore


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
    candidates = ports.exports.count(started)
    total = candidates if params.limit is None else min(candidates, params.limit)
    tally = _Tally()
    storage_error: StorageUnavailable | None = None
    interrupted = False
    progress = ctx.progress(
        "checking expired files" if ctx.dry_run else "deleting expired files", total, "files"
    )
    try:
        after: int | None = None
        while params.limit is None or tally.handled < params.limit:
            if ctx.stop_requested:
                interrupted = True
                break
            size = params.batch_size
            if params.limit is not None:
                size = min(size, params.limit - tally.handled)
            # `started` is the cutoff for the whole run: rows expiring meanwhile wait for
            # the next run, and the keyset walk can never meet a row twice.
            rows = ports.exports.batch(started, after, size)
            if not rows:
                break
            after = rows[-1].id
            storage_error = _one_batch(ctx, ports, rows, tally, params.sample_size)
            progress.advance(len(rows))
            if storage_error is not None:
                break
    finally:
        progress.close()
    if storage_error is not None and tally.done == 0:
        raise storage_error  # nothing was done: UNKNOWN (exit 3), one error event
    return _result(ctx, ports, params, candidates, tally, storage_error, interrupted,
                   duration_ms=int((ctx.now() - started).total_seconds() * 1000))


def _one_batch(
    ctx: JobContext,
    ports: CleanupPorts,
    rows: list[ExpiredExport],
    tally: _Tally,
    sample_size: int,
) -> StorageUnavailable | None:
    """Handle one batch; return the store's failure if it stopped answering midway."""
    done: list[int] = []
    try:
        for chunk in _chunks(rows, ports.store.max_chunk):
            outcomes = ports.store.check(chunk) if ctx.dry_run else ports.store.delete(chunk)
            for outcome in outcomes:
                tally.add(outcome, sample_size if ctx.dry_run else 0)
                if outcome.state == "failed":
                    _report_failure(ctx, outcome)
                else:
                    done.append(outcome.export.id)
    except StorageUnavailable as exc:
        return exc
    finally:
        # Even when the store fails midway, the rows of files already gone are marked.
        if done and not ctx.dry_run:
            ports.exports.mark_expired(done)
    return None


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
    trouble = tally.failed > 0 or storage_error is not None
    if storage_error is not None:
        fields["error"] = {"kind": storage_error.kind, "message": storage_error.message}
    stop_code = ctx.runtime.stop.exit_code
    if interrupted and stop_code is not None:
        state, code = "interrupted", stop_code
    elif ctx.dry_run:
        state, code = "dry_run", ExitCode.WARNING if trouble else ExitCode.OK
    else:
        state, code = ("partial", ExitCode.WARNING) if trouble else ("ok", ExitCode.OK)
    message = _message(ctx.dry_run, candidates, tally, state)
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
