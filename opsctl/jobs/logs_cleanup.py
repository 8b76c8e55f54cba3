"""``logs.cleanup``: delete export-log rows older than the retention, in batches by id,
archiving each batch first when asked to.

The guarantees, and how they are kept:

- **Archive before delete.** A batch's object is written, read back and compared (size and
  sha256) before its rows are deleted, and the delete removes exactly the rows that were
  read (count and id sum checked inside the delete's transaction; any difference rolls it
  back, removes the object and counts the batch as skipped). An archive that cannot be
  reached or written stops the run with exit 3 before the batch's delete.
- **No row lost, no duplicate after ``kill -9``.** Objects are named after the ids they hold
  and, before each object is written, a marker names it. A run that dies between writing an
  object and committing its delete leaves that marker behind; the next run first finishes
  that batch (deletes exactly the ids the object holds, whatever the retention is now: they
  are archived) and only then forms new batches, so no row ends up in two objects however
  the batch size or cutoff changed in between. Those rows count in ``deleted_count`` and
  ``recovered_count``, not in ``archived_count`` (they were archived by the earlier run).
- **Stops cleanly.** SIGTERM/SIGINT are checked between batches: a batch whose object is
  written is finished, the next one is not started, and the summary says ``interrupted``.
  ``skipped_count`` is the eligible rows the run left in place (stopped early, or a batch
  that changed while it was archived).
- **Dry run writes nothing**: it counts the eligible rows and how many objects they would
  make; the would-be numbers are reported as ``archived_count`` / ``deleted_count`` next
  to ``dry_run: true``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.archive_names import MARKER_NAME, object_name
from opsctl.errors import ArchiveUnavailable
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import LogArchive, LogBatch, OldLogs

JOB = "logs.cleanup"
SUMMARY_TYPE = "export_log_cleanup_complete"
WRITTEN_EVENT = "export_log_archive_written"
RECOVERED_EVENT = "export_log_archive_recovered"
SKIPPED_EVENT = "export_log_batch_skipped"


@dataclass(frozen=True)
class LogCleanupParams:
    retention_days: int
    batch_size: int
    archive: bool
    id_column: str = "id"  # the id's key in archived lines: the real column name

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise ValueError(f"retention_days must be >= 0, got {self.retention_days}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class LogCleanupPorts:
    logs: OldLogs
    archive: LogArchive | None = None  # required when params.archive


@dataclass
class _Tally:
    eligible: int = 0
    archived: int = 0
    deleted: int = 0
    recovered: int = 0
    objects: int = 0
    skipped_batches: int = 0
    interrupted: bool = False


def run(ctx: JobContext, ports: LogCleanupPorts, params: LogCleanupParams) -> JobResult:
    started = ctx.now()
    cutoff = started - timedelta(days=params.retention_days)
    archive = ports.archive if params.archive else None
    if params.archive and archive is None:
        raise ValueError("archive requested without an archive port")
    tally = _Tally(eligible=ports.logs.count_eligible(cutoff))
    if ctx.dry_run:
        if archive is not None:
            archive.read(MARKER_NAME)  # reachable? (a read: a dry run writes nothing)
        return _result(ctx, params, archive, tally, started, cutoff)
    progress = ctx.progress("deleting old log rows", tally.eligible, "rows")
    try:
        if archive is None:
            _delete_only(ctx, ports.logs, params, cutoff, tally, progress.advance)
        else:
            _recover(ctx, ports.logs, archive, params, tally)
            _archive_and_delete(ctx, ports.logs, archive, params, cutoff, tally,
                                progress.advance)
            # Every batch is settled (deleted, or skipped with its object removed).
            archive.remove(MARKER_NAME)
    finally:
        progress.close()
    return _result(ctx, params, archive, tally, started, cutoff)


def _delete_only(ctx: JobContext, logs: OldLogs, params: LogCleanupParams, cutoff: datetime,
                 tally: _Tally, advance: Callable[[int], None]) -> None:
    with closing(logs.delete_batches(cutoff, params.batch_size)) as batches:
        for deleted in batches:
            tally.deleted += deleted
            advance(deleted)
            if ctx.stop_requested:
                tally.interrupted = True
                return


def _archive_and_delete(ctx: JobContext, logs: OldLogs, archive: LogArchive,
                        params: LogCleanupParams, cutoff: datetime, tally: _Tally,
                        advance: Callable[[int], None]) -> None:
    with closing(logs.batches(cutoff, params.batch_size)) as batches:
        for batch in batches:
            if ctx.stop_requested:
                tally.interrupted = True
                return
            name = object_name(batch.first_id, batch.last_id)
            archive.write(MARKER_NAME, _marker(name, batch, cutoff, ctx))
            written = archive.write(name, batch.payload)
            archive.verify(written)
            ctx.emitter.emit(
                WRITTEN_EVENT, f"archived log rows {batch.first_id}-{batch.last_id}",
                uri=written.uri, rows=batch.rows, bytes=written.bytes,
                sha256=written.sha256, first_id=batch.first_id, last_id=batch.last_id,
            )
            if logs.delete_batch(batch, cutoff):
                tally.archived += batch.rows
                tally.deleted += batch.rows
                tally.objects += 1
            else:
                archive.remove(name)  # its rows stay: the next run archives them again
                tally.skipped_batches += 1
                ctx.emitter.emit(
                    SKIPPED_EVENT,
                    f"log rows {batch.first_id}-{batch.last_id} changed while being "
                    "archived; left in place and their object removed",
                    level="warning", uri=written.uri, rows=batch.rows,
                    first_id=batch.first_id, last_id=batch.last_id,
                )
            advance(batch.rows)


def _marker(name: str, batch: LogBatch, cutoff: datetime, ctx: JobContext) -> bytes:
    return json.dumps({
        "object": name, "first_id": batch.first_id, "last_id": batch.last_id,
        "rows": batch.rows, "cutoff": rfc3339(cutoff), "run_id": ctx.runtime.run_id,
    }).encode()


def _recover(ctx: JobContext, logs: OldLogs, archive: LogArchive, params: LogCleanupParams,
             tally: _Tally) -> None:
    """Finish the batch a killed run left between its archive and its delete."""
    raw = archive.read(MARKER_NAME)
    if raw is None:
        return
    where = f"{archive.uri}/{MARKER_NAME}"
    try:
        marker = json.loads(raw)
        name, first, last, rows = (str(marker["object"]), int(marker["first_id"]),
                                   int(marker["last_id"]), int(marker["rows"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveUnavailable(f"{where} is not a marker opsctl wrote: {exc}") from exc
    content = archive.read(name)
    if content is not None:
        uri = f"{archive.uri}/{name}"
        ids = _archived_ids(content, params.id_column, uri)
        if len(ids) != rows or ids[0] != first or ids[-1] != last:
            raise ArchiveUnavailable(
                f"{uri} does not hold the {rows} rows {first}-{last} its marker names; "
                "nothing deleted, inspect it"
            )
        deleted = logs.delete_ids(ids)
        tally.deleted += deleted
        tally.recovered += deleted
        ctx.emitter.emit(
            RECOVERED_EVENT,
            f"finished the batch {first}-{last} an earlier run archived but did not delete",
            uri=uri, rows=rows, deleted_count=deleted, first_id=first, last_id=last,
        )
    archive.remove(MARKER_NAME)


def _archived_ids(content: bytes, id_column: str, uri: str) -> list[int]:
    try:
        return [int(json.loads(line)[id_column]) for line in content.splitlines() if line]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveUnavailable(
            f"{uri}: cannot read the {id_column!r} of its rows ({exc}); nothing deleted"
        ) from exc


def _result(ctx: JobContext, params: LogCleanupParams, archive: LogArchive | None,
            tally: _Tally, started: datetime, cutoff: datetime) -> JobResult:
    older = f"log rows older than {rfc3339(cutoff)}"
    where = f" to {archive.uri}" if archive else ""
    if ctx.dry_run:
        objects = -(-tally.eligible // params.batch_size) if archive else 0
        archived, deleted = (tally.eligible if archive else 0), tally.eligible
        state, code = "dry_run", ExitCode.OK
        message = f"dry run: would delete {deleted:,} {older}" + (
            f", archived first in {objects:,} objects{where}" if archive else "")
    else:
        objects, archived, deleted = tally.objects, tally.archived, tally.deleted
        if tally.interrupted:
            state = "interrupted"
            code = ctx.runtime.stop.exit_code or ExitCode.SIGTERM
            message = f"interrupted after deleting {deleted:,} {older}"
        elif tally.skipped_batches:
            state, code = "warning", ExitCode.WARNING
            message = (f"deleted {deleted:,} {older}; {tally.skipped_batches} batch(es) "
                       "changed while being archived and were left for the next run")
        else:
            state, code = "completed", ExitCode.OK
            message = f"deleted {deleted:,} {older}" + (
                f", archived in {objects:,} objects{where}" if archive else "")
    fields: dict[str, Any] = {
        "dry_run": ctx.dry_run,
        "retention_days": params.retention_days,
        "cutoff": rfc3339(cutoff),
        "eligible_count": tally.eligible,
        "archived_count": archived,
        "deleted_count": deleted,
        "skipped_count": 0 if ctx.dry_run else max(0, tally.eligible - deleted),
        "archive_objects": objects,
        "recovered_count": tally.recovered,
        "archive_uri": archive.uri if archive else None,
        "batch_size": params.batch_size,
        "duration_ms": int((ctx.now() - started).total_seconds() * 1000),
    }
    return JobResult(SUMMARY_TYPE, message, state, code, fields)
