"""``files audit``: where the storage and the table disagree, found in one pass.

The storage listing and the table's ``file_path`` values come in the same (UTF-8 byte)
order and are merged like two sorted files (:mod:`opsctl.domain.sorted_merge`), so the
audit holds one item of each at a time, whatever their size. A stream out of order stops
the run (exit 3) before anything is deleted: it would make referenced files look orphaned.

- An **orphan** is a stored file no row references, older than ``min_age`` (a file an
  export is still writing, whose row is not committed yet, is young).
- A **missing** file is the ``file_path`` of a ``completed`` row that is not stored: a
  download that would fail.

With ``delete_orphans`` the orphans are spooled (a temporary file, never memory) during
the pass; once the pass is over the deletion guard judges their count, and only then are
they deleted, through the files cleanup store (its refusals: no ``..``, no absolute
keys, no symlinks; ``DeleteObjects`` per 1,000 keys on S3). A dry run does everything but
the deletes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from opsctl.domain.sorted_merge import OutOfOrder, merge_join
from opsctl.domain.units import human_bytes, human_count
from opsctl.errors import StorageUnavailable
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs import deletion_guard
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import (
    ExpiredExport,
    FileStore,
    FindingReport,
    ReferencedPath,
    ReferencedPaths,
    StorageListing,
    StoredFile,
)

__all__ = ["StorageListing"]

JOB = "files.audit"
SUMMARY_TYPE = "export_file_audit_complete"
DELETE_ERROR = "export_file_cleanup_error"
BASELINE_FIELDS = ("deleted_orphans",)


@dataclass(frozen=True)
class AuditParams:
    min_age: timedelta = timedelta(hours=24)
    delete_orphans: bool = False
    examples: int = 20
    # What the summary's dry_run says: a plain audit runs read-only (no lock, no run
    # record) without being a dry run of anything.
    dry_run: bool = False


@dataclass(frozen=True)
class AuditPorts:
    listing: StorageListing
    references: ReferencedPaths
    store: FileStore | None = None  # required with delete_orphans
    report: FindingReport | None = None
    guard: deletion_guard.DeletionGuard | None = None


@dataclass
class _Tally:
    stored: int = 0
    referenced: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    missing: int = 0
    young: int = 0
    deleted: int = 0
    failed: int = 0
    orphan_examples: list[dict[str, Any]] = field(default_factory=list)
    missing_examples: list[dict[str, Any]] = field(default_factory=list)


def run(ctx: JobContext, ports: AuditPorts, params: AuditParams) -> JobResult:
    started = ctx.now()
    if params.delete_orphans and ports.store is None:
        raise ValueError("delete_orphans needs a file store")
    cutoff = started - params.min_age
    tally = _Tally()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        _pass(ctx, ports, params, cutoff, tally, spool if params.delete_orphans else None)
        trip = None
        if params.delete_orphans:
            trip = deletion_guard.check(ctx, ports.guard, tally.orphans)
            if trip is None and tally.orphans:
                _delete(ctx, ports, spool, tally)
    return _result(ctx, ports, params, tally, started, tripped=trip is not None)


def _pass(ctx: JobContext, ports: AuditPorts, params: AuditParams, cutoff: datetime,
          tally: _Tally, spool: IO[str] | None) -> None:
    progress = ctx.progress("auditing stored files", None, "files")
    paths = ports.references.paths()
    try:
        pairs = merge_join(ports.listing.files(), paths, _stored_key, _path_key,
                           names=(f"the listing of {ports.listing.where}",
                                  "the table's file paths"))
        for stored, referenced in pairs:
            if stored is not None:
                tally.stored += 1
                progress.advance(1)
            if referenced is not None:
                tally.referenced += 1
            if stored is not None and referenced is None:
                if stored.modified >= cutoff:
                    tally.young += 1
                    continue
                _orphan(ports, params, tally, stored, spool)
            elif referenced is not None and stored is None and referenced.completed:
                _missing(ports, params, tally, referenced)
    except OutOfOrder as exc:
        raise StorageUnavailable(f"files audit stopped, nothing deleted: {exc}") from exc
    finally:
        close = getattr(paths, "close", None)
        if close is not None:
            close()
        progress.close()
    if ports.report is not None:
        ports.report.close()  # complete: the report appears whole


def _stored_key(item: StoredFile) -> str:
    return item.key


def _path_key(item: ReferencedPath) -> str:
    return item.path


def _orphan(ports: AuditPorts, params: AuditParams, tally: _Tally, stored: StoredFile,
            spool: IO[str] | None) -> None:
    tally.orphans += 1
    tally.orphan_bytes += stored.size
    finding = {"finding": "orphan", "file_path": stored.key, "size": stored.size,
               "modified": rfc3339(stored.modified)}
    if len(tally.orphan_examples) < params.examples:
        tally.orphan_examples.append(finding)
    if ports.report is not None:
        ports.report.write(finding)
    if spool is not None:
        spool.write(json.dumps([stored.key, stored.size]) + "\n")


def _missing(ports: AuditPorts, params: AuditParams, tally: _Tally,
             referenced: ReferencedPath) -> None:
    tally.missing += 1
    finding = {"finding": "missing", "file_path": referenced.path}
    if len(tally.missing_examples) < params.examples:
        tally.missing_examples.append(finding)
    if ports.report is not None:
        ports.report.write(finding)


def _spooled(spool: IO[str], size: int) -> Iterator[list[ExpiredExport]]:
    spool.seek(0)
    chunk: list[ExpiredExport] = []
    for number, line in enumerate(spool):
        key, length = json.loads(line)
        chunk.append(ExpiredExport(number, "", key, int(length)))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _delete(ctx: JobContext, ports: AuditPorts, spool: IO[str], tally: _Tally) -> None:
    store = ports.store
    assert store is not None
    progress = ctx.progress("deleting orphans" if not ctx.dry_run else "checking orphans",
                            tally.orphans, "files")
    try:
        for chunk in _spooled(spool, store.max_chunk):
            outcomes = store.check(chunk) if ctx.dry_run else store.delete(chunk)
            for outcome in outcomes:
                if outcome.state == "failed":
                    tally.failed += 1
                    ctx.emitter.emit(
                        DELETE_ERROR, f"could not delete orphan {outcome.export.file_path!r}: "
                        f"{outcome.error_message}", level="error", export_id=None,
                        file_path=outcome.export.file_path,
                        error={"kind": outcome.error_kind or "delete_failed",
                               "message": outcome.error_message or "not deleted"},
                        dry_run=ctx.dry_run)
                elif outcome.state == "deleted":
                    tally.deleted += 1
            progress.advance(len(chunk))
            if ctx.stop_requested:
                return
    finally:
        progress.close()


def _result(ctx: JobContext, ports: AuditPorts, params: AuditParams, tally: _Tally,
            started: datetime, *, tripped: bool) -> JobResult:
    findings = tally.orphans + tally.missing
    stop_code = ctx.runtime.stop.exit_code
    if tripped:
        state, code = deletion_guard.TRIPPED_STATE, ExitCode.CRITICAL
    elif stop_code is not None:
        state, code = "interrupted", stop_code
    elif findings or tally.failed:
        state, code = "findings", ExitCode.WARNING
    else:
        state, code = "ok", ExitCode.OK
    message = (f"audited {human_count(tally.stored)} stored files against "
               f"{human_count(tally.referenced)} file paths in {ports.listing.where}: "
               f"{human_count(tally.orphans)} orphans ({human_bytes(tally.orphan_bytes)}), "
               f"{human_count(tally.missing)} missing")
    if params.delete_orphans:
        verb = "would delete" if ctx.dry_run else "deleted"
        message += ("; deletion guard tripped, nothing deleted" if tripped
                    else f"; {verb} {human_count(tally.deleted)} orphans")
    fields: dict[str, Any] = {
        "dry_run": params.dry_run,
        "storage": ports.listing.where,
        "min_age_s": int(params.min_age.total_seconds()),
        "stored_files": tally.stored,
        "referenced_files": tally.referenced,
        "orphan_count": tally.orphans,
        "orphan_bytes": tally.orphan_bytes,
        "missing_count": tally.missing,
        "young_unreferenced": tally.young,
        "deleted_orphans": tally.deleted,
        "failed_deletes": tally.failed,
        "examples": {"orphans": tally.orphan_examples, "missing": tally.missing_examples},
        "duration_ms": int((ctx.now() - started).total_seconds() * 1000),
    }
    if params.delete_orphans:
        fields["forced"] = deletion_guard.forced(ports.guard)
    return JobResult(SUMMARY_TYPE, message, state, code, fields)
