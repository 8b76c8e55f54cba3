"""``logs verify``: every archive object under a URI read whole and held against its name
and the catalog. Read-only: no lock, no run record.

Findings, one event per object that is not fine:

- **bad** (``export_log_archive_object_bad``): broken gzip, a truncated object, a line that
  is not JSON, ids outside the name's range or out of order, or a catalogued object whose
  size, sha256, row count or id range differ from its catalog row;
- **missing** (``export_log_archive_object_missing``): catalogued, but not found;
- **unrecorded** (``export_log_archive_object_unrecorded``): intact, but no catalog row
  names it (written by a run that died before its delete, or copied in by hand).

Exit 2 for any bad or missing object (an archive that cannot give the rows back), 1 when
the only findings are unrecorded objects, 0 otherwise. Objects are read a few at a time
(:attr:`ArchiveObjects.parallel_reads`), each in constant memory.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from opsctl.domain.archive_check import ARCHIVE_ENDING, BadObject, LineCheck
from opsctl.exit_codes import ExitCode
from opsctl.jobs.archive_reading import ordered_map, read_object
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import ArchiveCatalog, ArchiveObjects, CatalogEntry, StoredObject

JOB = "logs.verify"
SUMMARY_TYPE = "export_log_archive_verified"
BAD_EVENT = "export_log_archive_object_bad"
MISSING_EVENT = "export_log_archive_object_missing"
UNRECORDED_EVENT = "export_log_archive_object_unrecorded"


@dataclass(frozen=True)
class VerifyPorts:
    objects: ArchiveObjects
    catalog: ArchiveCatalog


@dataclass(frozen=True)
class VerifyParams:
    id_column: str = "id"


@dataclass
class _Tally:
    objects: int = 0
    rows: int = 0
    ok: int = 0
    bad: int = 0
    missing: int = 0
    unrecorded: int = 0
    bytes: int = 0


def run(ctx: JobContext, ports: VerifyPorts, params: VerifyParams) -> JobResult:
    started = ctx.now()
    root = ports.objects.uri
    catalog = {entry.uri: entry for entry in ports.catalog.entries(root)}
    tally = _Tally()
    # Each object is paired with its catalog row here, on this thread, before it is read.
    archives = ((obj, catalog.pop(obj.uri, None)) for obj in ports.objects.listing()
                if obj.key.endswith(ARCHIVE_ENDING))

    def check(item: tuple[StoredObject, CatalogEntry | None]) -> LineCheck:
        return read_object(ports.objects, item[0], item[1], params.id_column)

    workers = max(1, ports.objects.parallel_reads)
    progress = ctx.progress("verifying archive objects", len(catalog) or None, "objects")
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="opsctl-verify") as pool:
            for (obj, entry), future in ordered_map(pool, check, archives, workers * 2):
                tally.objects += 1
                tally.bytes += obj.size
                try:
                    lines = future.result()
                except BadObject as bad:
                    tally.bad += 1
                    _bad(ctx, obj, entry, bad.reason)
                else:
                    tally.rows += lines.rows
                    if entry is None:
                        tally.unrecorded += 1
                        ctx.emitter.emit(
                            UNRECORDED_EVENT, f"{obj.uri}: intact, but not in the catalog",
                            level="warning", uri=obj.uri, rows=lines.rows,
                            first_id=lines.first_id, last_id=lines.last_id, bytes=obj.size)
                    else:
                        tally.ok += 1
                progress.advance(1)
    finally:
        progress.close()
    for entry in catalog.values():  # catalogued, never listed
        tally.missing += 1
        ctx.emitter.emit(MISSING_EVENT, f"{entry.uri}: in the catalog, not in the archive",
                         level="error", uri=entry.uri, rows=entry.rows,
                         first_id=entry.first_id, last_id=entry.last_id)
    return _result(ctx, root, tally, started)


def _bad(ctx: JobContext, obj: StoredObject, entry: CatalogEntry | None, reason: str) -> None:
    ctx.emitter.emit(BAD_EVENT, f"{obj.uri}: {reason}", level="error", uri=obj.uri,
                     reason=reason, recorded=entry is not None, bytes=obj.size)


def _result(ctx: JobContext, root: str, tally: _Tally, started: datetime) -> JobResult:
    if tally.bad or tally.missing:
        state, code = "critical", ExitCode.CRITICAL
    elif tally.unrecorded:
        state, code = "warning", ExitCode.WARNING
    else:
        state, code = "ok", ExitCode.OK
    message = (f"verified {tally.objects:,} archive objects ({tally.rows:,} rows) under "
               f"{root}: {tally.ok:,} ok, {tally.bad:,} bad, {tally.missing:,} missing, "
               f"{tally.unrecorded:,} unrecorded")
    fields = {
        "archive_uri": root,
        "objects": tally.objects,
        "rows": tally.rows,
        "bytes": tally.bytes,
        "ok_objects": tally.ok,
        "bad_objects": tally.bad,
        "missing_objects": tally.missing,
        "unrecorded_objects": tally.unrecorded,
        "duration_ms": int((ctx.now() - started).total_seconds() * 1000),
    }
    return JobResult(SUMMARY_TYPE, message, state, code, fields)
