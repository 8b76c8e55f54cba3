"""``logs.restore``: archived export-log rows back into the table, one object at a time.

- **Only objects that can hold matching rows are read.** A catalogued object of another
  table, or whose ``created_at`` range lies outside ``--since``/``--until``, is skipped
  unread. An object nobody catalogued is read when it sits where ``logs cleanup`` puts
  this table's objects (``<uri>/<table>/``, or directly under the URI given).
- **Verified before anything is written from it.** Each object streams through the same
  checks as ``logs verify`` into a staging area the table never sees (a temporary table
  under a savepoint of its own, an open transaction); only objects that passed are
  written, whole (the target may group a few per transaction). One that fails is reported
  (``export_log_restore_object_failed``), leaves nothing behind, and the run goes on and
  ends with exit 1. A catalogued object that is gone fails too.
- **Idempotent.** A row whose id is in the table is left as it is (``rows_present``), so a
  second restore restores nothing, and a restore killed at any point is finished by
  running it again.
- **Dry run** reads and verifies every object and counts what would be restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opsctl.domain.archive_check import ARCHIVE_ENDING, BadObject
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.archive_reading import read_object
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import (
    ArchiveCatalog,
    ArchiveObjects,
    CatalogEntry,
    RestoreTarget,
    RestoreWindow,
    StoredObject,
)

JOB = "logs.restore"
SUMMARY_TYPE = "export_log_restore_complete"
FAILED_EVENT = "export_log_restore_object_failed"


@dataclass(frozen=True)
class RestorePorts:
    objects: ArchiveObjects
    catalog: ArchiveCatalog
    target: RestoreTarget


@dataclass(frozen=True)
class RestoreParams:
    source_table: str  # the configured source table: whose objects are restored
    window: RestoreWindow = field(default_factory=RestoreWindow)
    id_column: str = "id"

    def __post_init__(self) -> None:
        since, until = self.window.since, self.window.until
        if since is not None and until is not None and since >= until:
            raise ValueError("--since must be before --until")


@dataclass
class _Tally:
    objects: int = 0
    skipped: int = 0
    failed: int = 0
    rows_read: int = 0
    matching: int = 0
    restored: int = 0
    interrupted: bool = False


def run(ctx: JobContext, ports: RestorePorts, params: RestoreParams) -> JobResult:
    started = ctx.now()
    ports.target.check()  # a wrong --into is a configuration error before any read
    catalog = {entry.uri: entry for entry in ports.catalog.entries(ports.objects.uri)}
    tally = _Tally()
    progress = ctx.progress("restoring archived rows", len(catalog) or None, "objects")
    try:
        for obj in ports.objects.listing():
            if not obj.key.endswith(ARCHIVE_ENDING):
                continue
            entry = catalog.pop(obj.uri, None)
            if not _may_hold(obj, entry, params):
                tally.skipped += 1
                continue
            if ctx.stop_requested:
                tally.interrupted = True
                break
            _restore_one(ctx, ports, params, obj, entry, tally)
            progress.advance(1)
    finally:
        progress.close()
    last = ports.target.flush()  # objects that passed and are still staged
    tally.matching += last.matching
    tally.restored += last.restored
    if not tally.interrupted:
        for entry in catalog.values():  # catalogued, not in the archive
            if _catalogued_for(entry, params):
                tally.objects += 1
                _failed(ctx, entry.uri, "in the catalog, not in the archive", entry.rows)
                tally.failed += 1
    return _result(ctx, ports, params, tally, started)


def _restore_one(ctx: JobContext, ports: RestorePorts, params: RestoreParams,
                 obj: StoredObject, entry: CatalogEntry | None, tally: _Tally) -> None:
    tally.objects += 1
    load = ports.target.load(params.window, ctx.dry_run)
    try:
        lines = read_object(ports.objects, obj, entry, params.id_column, sink=load.add)
        counts = load.finish()
    except BadObject as bad:
        load.abort()
        tally.failed += 1
        _failed(ctx, obj.uri, bad.reason, entry.rows if entry else None)
        return
    except BaseException:
        load.abort()
        raise
    tally.rows_read += lines.rows
    tally.matching += counts.matching
    tally.restored += counts.restored


def _failed(ctx: JobContext, uri: str, reason: str, rows: int | None) -> None:
    ctx.emitter.emit(FAILED_EVENT, f"{uri}: {reason}; nothing restored from it",
                     level="error", uri=uri, reason=reason, rows=rows, dry_run=ctx.dry_run)


def _same_table(name: str, source_table: str) -> bool:
    return name.rpartition(".")[2] == source_table.rpartition(".")[2]


def _catalogued_for(entry: CatalogEntry, params: RestoreParams) -> bool:
    return (_same_table(entry.source_table, params.source_table)
            and params.window.overlaps(entry.min_created_at, entry.max_created_at))


def _may_hold(obj: StoredObject, entry: CatalogEntry | None, params: RestoreParams) -> bool:
    if entry is not None:
        return _catalogued_for(entry, params)
    parent = obj.key.rpartition("/")[0]
    return parent == "" or _same_table(parent.rpartition("/")[2], params.source_table)


def _result(ctx: JobContext, ports: RestorePorts, params: RestoreParams, tally: _Tally,
            started: datetime) -> JobResult:
    present = tally.matching - tally.restored
    would = "would restore" if ctx.dry_run else "restored"
    where = f"from {ports.objects.uri} into {ports.target.table}"
    if tally.interrupted:
        state = "interrupted"
        code = ctx.runtime.stop.exit_code or ExitCode.SIGTERM
    elif tally.failed:
        state, code = "partial", ExitCode.WARNING
    else:
        state, code = ("dry_run" if ctx.dry_run else "ok"), ExitCode.OK
    if tally.objects == 0:
        message = f"nothing to restore: no archive object {where} can hold matching rows"
    else:
        message = (f"{would} {tally.restored:,} rows {where} ({present:,} already there, "
                   f"{tally.rows_read:,} read from {tally.objects:,} objects, "
                   f"{tally.failed:,} failed)")
    window = params.window
    fields = {
        "dry_run": ctx.dry_run,
        "archive_uri": ports.objects.uri,
        "into": ports.target.table,
        "since": rfc3339(window.since) if window.since else None,
        "until": rfc3339(window.until) if window.until else None,
        "objects": tally.objects,
        "objects_skipped": tally.skipped,
        "objects_failed": tally.failed,
        "rows_read": tally.rows_read,
        "rows_restored": tally.restored,
        "rows_present": present,
        "duration_ms": int((ctx.now() - started).total_seconds() * 1000),
    }
    return JobResult(SUMMARY_TYPE, message, state, code, fields)
