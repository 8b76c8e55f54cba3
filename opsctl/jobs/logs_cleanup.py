"""``logs.cleanup``: delete export-log rows older than the retention, in batches by id,
archiving each batch first when asked to.

The guarantees, and how they are kept:

- **Archive before delete, and only what was archived.** On PostgreSQL (the ``held``
  port, ``archive_lanes``) a batch is deleted first in a transaction held open, which
  returns exactly the rows it removes; its object is written, read back and compared
  (size and sha256) before that delete commits, two batches at once. Elsewhere a batch's
  object is written and verified before its rows are deleted, and the delete
  removes the batch's rows only in the versions that were read: a row updated, re-dated,
  added or removed since the read makes the delete remove nothing (the adapter compares
  inside the delete's own transaction). Such a batch's object is removed and the batch
  read again in its new versions, up to three times; after that it is left in place for
  the next run (``export_log_batch_skipped``, exit 1). An archive that cannot be reached
  or written stops the run with exit 3 before the batch's delete.
- **Every deleted row is catalogued.** The catalog row of a batch's object is written in
  the transaction that deletes the batch, so a catalogued object always holds rows that
  are gone, and a crash never leaves a catalogue row for rows that are still there.
- **Objects are never overwritten.** Each name carries the ids and the run id, and objects
  are created exclusively: an existing object with other content stops the run (exit 3)
  before anything of that batch is deleted.
- **No row lost, no duplicate after ``kill -9``.** A marker names each object before it
  is published, and the next run settles what a killed run left (``logs_recovery``).
  Recovered rows count in ``deleted_count`` and ``recovered_count``, not in
  ``archived_count``.
- **Rows that cannot be compared are quarantined.** A ``created_at`` that is no timestamp
  (an integer or garbage on SQLite) is reported by id (``export_log_row_quarantined``),
  never deleted, and the run goes on and exits 1.
- **Stops cleanly.** SIGTERM/SIGINT are checked between batches: a batch whose object is
  written is finished, the next one is not started, and the summary says ``interrupted``.
  ``skipped_count`` is the eligible rows the run left in place. ``batch_pause_ms`` waits
  between batches (a signal ends the wait) to spare a busy primary.
- **Dry run writes nothing**: it counts the eligible rows and how many objects they would
  make; the would-be numbers are reported as ``archived_count`` / ``deleted_count`` next
  to ``dry_run: true``, and the partitions it would drop are named.
- **Whole partitions** of a partitioned table (``partitions`` port, PostgreSQL) go first,
  detached and dropped rather than deleted row by row; see ``logs_partitions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.archive_names import object_name
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs import archive_lanes, deletion_guard, logs_partitions, logs_recovery
from opsctl.jobs.archive_staging import staged_ahead
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import (
    ArchivedObject,
    CatalogRecord,
    HeldLogs,
    LogArchive,
    LogBatch,
    LogPartitions,
    OldLogs,
    Partition,
    PoisonRow,
    StagedObject,
)

JOB = "logs.cleanup"
SUMMARY_TYPE = "export_log_cleanup_complete"
WRITTEN_EVENT = "export_log_archive_written"
SKIPPED_EVENT = "export_log_batch_skipped"
POISON_EVENT = "export_log_row_quarantined"

# Reads of one batch whose rows keep changing before it is left for the next run.
MAX_READS = 4


@dataclass(frozen=True)
class LogCleanupParams:
    retention_days: int
    batch_size: int
    archive: bool
    id_column: str = "id"  # the id's key in archived lines: the real column name
    created_at_column: str = "created_at"
    catalog_uri: str = ""  # the archive root as configured; the catalog's ``uri``
    catalog_prefix: str = ""  # the objects' directory below it (the table)
    batch_pause_ms: int = 0
    drop_partitions: bool = True  # take partitions wholly past the cutoff whole

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise ValueError(f"retention_days must be >= 0, got {self.retention_days}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.batch_pause_ms < 0:
            raise ValueError(f"batch_pause_ms must be >= 0, got {self.batch_pause_ms}")


@dataclass(frozen=True)
class LogCleanupPorts:
    logs: OldLogs
    archive: LogArchive | None = None  # required when params.archive
    guard: deletion_guard.DeletionGuard | None = None
    table_rows: Callable[[], int] | None = None  # every row of the table, for the guard
    partitions: LogPartitions | None = None  # whole partitions to drop, when partitioned
    held: HeldLogs | None = None  # archive by held deletes (PostgreSQL), two batches at once


@dataclass
class _Tally:
    eligible: int = 0
    archived: int = 0
    deleted: int = 0
    recovered: int = 0
    objects: int = 0
    skipped_batches: int = 0
    quarantined: int = 0
    interrupted: bool = False
    partitions: list[str] = field(default_factory=list)  # dropped (or, dry, to drop)
    skipped_partitions: int = 0


def run(ctx: JobContext, ports: LogCleanupPorts, params: LogCleanupParams) -> JobResult:
    started = ctx.now()
    cutoff = started - timedelta(days=params.retention_days)
    archive = ports.archive if params.archive else None
    if params.archive and archive is None:
        raise ValueError("archive requested without an archive port")
    poison = ports.logs.poison_rows(cutoff)
    report_poison(ctx, poison)
    settings = logs_partitions.Settings(cutoff, params.batch_size, params.catalog_uri,
                                        params.drop_partitions)
    survey = logs_partitions.survey(ctx, ports.partitions, archive, settings,
                                    lambda: ports.logs.count_eligible(cutoff), ports.table_rows)
    whole = survey.whole
    tally = _Tally(eligible=survey.eligible, quarantined=len(poison),
                   partitions=list(survey.droppable))
    trip = deletion_guard.check(ctx, ports.guard, tally.eligible,
                                table_rows=survey.table_rows)
    if trip is not None:  # before any archive write or delete, in a dry run too
        return deletion_guard.tripped(
            _result(ctx, params, archive, tally, started, cutoff), trip, ports.guard,
            zeroed=("archived_count", "deleted_count", "archive_objects"),
            left="skipped_count")
    if ctx.dry_run:
        if archive is not None:
            archive.read_marker()  # reachable? (a read: a dry run writes nothing)
        return deletion_guard.with_forced(
            _result(ctx, params, archive, tally, started, cutoff), ports.guard)
    progress = ctx.progress("deleting old log rows", tally.eligible, "rows")
    try:
        if archive is not None:
            recovered = logs_recovery.recover(ctx, ports.logs, archive, cutoff,
                                              _catalog(ctx, params))
            tally.deleted += recovered
            tally.recovered += recovered

        def batches() -> None:
            if archive is None:
                _delete_only(ctx, ports.logs, params, cutoff, tally, progress.advance)
                return
            if ports.held is not None:
                _archive_in_lanes(ctx, ports.held, archive, params, cutoff, tally,
                                  progress.advance)
                archive.remove_marker()
                return
            _archive_and_delete(ctx, ports.logs, archive, params, cutoff, tally,
                                progress.advance)
            # Every batch is settled (deleted, or skipped with its object removed).
            archive.remove_marker()

        if ports.partitions is not None and whole:
            # The batches run once the partitions are taken (a stop on a partition leaves
            # them for the next run), or while they are dropped when nothing is archived.
            _take_partitions(ctx, ports.partitions, whole, archive, settings, params,
                             tally, progress.advance, batches)
        else:
            batches()
    finally:
        progress.close()
    return deletion_guard.with_forced(_result(ctx, params, archive, tally, started, cutoff),
                                      ports.guard)


def report_poison(ctx: JobContext, poison: Sequence[PoisonRow]) -> None:
    """One warning per row whose ``created_at`` cannot be compared; such rows stay."""
    for row in poison:
        ctx.emitter.emit(
            POISON_EVENT, f"log row {row.id} left untouched: {row.reason}", level="warning",
            id=row.id, column="created_at", value=row.value, reason=row.reason)


def _pause(ctx: JobContext, params: LogCleanupParams) -> None:
    if params.batch_pause_ms:
        ctx.pause(params.batch_pause_ms / 1000)


def _take_partitions(ctx: JobContext, port: LogPartitions,
                     whole: Sequence[Partition], archive: LogArchive | None,
                     settings: logs_partitions.Settings, params: LogCleanupParams,
                     tally: _Tally, advance: Callable[[int], None],
                     batches: Callable[[], None]) -> None:
    def record_of(stored: ArchivedObject, batch: LogBatch) -> CatalogRecord:
        return _record(ctx, params, stored, batch.first_id, batch.last_id, batch.rows,
                       batch.min_created_at, batch.max_created_at)

    taken = logs_partitions.take(ctx, port, whole, archive, settings, record_of, advance,
                                 batches)
    tally.deleted += taken.deleted
    tally.archived += taken.archived
    tally.objects += taken.objects
    tally.partitions = taken.dropped
    tally.skipped_partitions = taken.skipped
    tally.interrupted = tally.interrupted or taken.interrupted


def _delete_only(ctx: JobContext, logs: OldLogs, params: LogCleanupParams, cutoff: datetime,
                 tally: _Tally, advance: Callable[[int], None]) -> None:
    with closing(logs.delete_batches(cutoff, params.batch_size)) as batches:
        for deleted in batches:
            tally.deleted += deleted
            advance(deleted)
            if ctx.stop_requested:
                tally.interrupted = True
                return
            _pause(ctx, params)


def _archive_in_lanes(ctx: JobContext, held: HeldLogs, archive: LogArchive,
                      params: LogCleanupParams, cutoff: datetime, tally: _Tally,
                      advance: Callable[[int], None]) -> None:
    def record_of(stored: ArchivedObject, batch: LogBatch) -> CatalogRecord:
        return _record(ctx, params, stored, batch.first_id, batch.last_id, batch.rows,
                       batch.min_created_at, batch.max_created_at)

    done = archive_lanes.run(ctx, held, archive, cutoff, params.batch_size, record_of,
                             advance, params.batch_pause_ms / 1000)
    tally.archived += done.rows
    tally.deleted += done.rows
    tally.objects += done.objects
    tally.interrupted = tally.interrupted or done.interrupted


def _archive_and_delete(ctx: JobContext, logs: OldLogs, archive: LogArchive,
                        params: LogCleanupParams, cutoff: datetime, tally: _Tally,
                        advance: Callable[[int], None]) -> None:
    after: int | None = None  # the last id settled: batches resume after it
    reads = 0
    while True:
        with closing(logs.batches(cutoff, params.batch_size, after)) as batches, \
                closing(staged_ahead(archive, batches)) as staged_batches:
            for batch, staged in staged_batches:
                if ctx.stop_requested:
                    archive.discard(staged)
                    tally.interrupted = True
                    return
                reads += 1
                if _archive_batch(ctx, logs, archive, params, cutoff, batch, staged, tally):
                    advance(batch.rows)
                    after, reads = batch.last_id, 0
                    _pause(ctx, params)
                    continue
                if reads < MAX_READS:
                    break  # read the range again, in the rows' current versions
                tally.skipped_batches += 1
                ctx.emitter.emit(
                    SKIPPED_EVENT,
                    f"log rows {batch.first_id}-{batch.last_id} changed while being "
                    f"archived, {reads} times; left in place for the next run and their "
                    "object removed",
                    level="warning", uri=f"{archive.uri}/{_name(batch, ctx)}",
                    rows=batch.rows, first_id=batch.first_id, last_id=batch.last_id,
                )
                advance(batch.rows)
                after, reads = batch.last_id, 0
            else:
                return


def _name(batch: LogBatch, ctx: JobContext) -> str:
    return object_name(batch.first_id, batch.last_id, ctx.runtime.run_id)


def _archive_batch(ctx: JobContext, logs: OldLogs, archive: LogArchive,
                   params: LogCleanupParams, cutoff: datetime, batch: LogBatch,
                   staged: StagedObject, tally: _Tally) -> bool:
    """Write, verify, then delete-and-catalogue one batch; False when its rows changed
    (its object is removed again, nothing deleted)."""
    name = _name(batch, ctx)
    try:
        archive.write_marker(logs_recovery.marker([(name, batch)], cutoff,
                                                    ctx.runtime.run_id))
    except BaseException:
        archive.discard(staged)
        raise
    written = archive.publish(name, staged)
    archive.verify(written)
    ctx.emitter.emit(
        WRITTEN_EVENT, f"archived log rows {batch.first_id}-{batch.last_id}",
        uri=written.uri, rows=batch.rows, bytes=written.bytes,
        sha256=written.sha256, first_id=batch.first_id, last_id=batch.last_id,
    )
    record = _record(ctx, params, written, batch.first_id, batch.last_id, batch.rows,
                     batch.min_created_at, batch.max_created_at)
    if logs.delete_batch(batch, cutoff, record):
        tally.archived += batch.rows
        tally.deleted += batch.rows
        tally.objects += 1
        return True
    archive.remove(name)  # never catalogued; its rows are still in the table
    return False


def _record(ctx: JobContext, params: LogCleanupParams, stored: ArchivedObject, first: int,
            last: int, rows: int, oldest: datetime | None,
            newest: datetime | None) -> CatalogRecord:
    return CatalogRecord(
        uri=params.catalog_uri, key=_key(params, stored.name),
        source_table=params.catalog_prefix, first_id=first, last_id=last, rows=rows,
        bytes=stored.bytes, sha256=stored.sha256, min_created_at=oldest,
        max_created_at=newest, run_id=ctx.runtime.run_id, created_at=ctx.now())


def _catalog(ctx: JobContext, params: LogCleanupParams) -> logs_recovery.Catalog:
    def key_of(name: str) -> str:
        return _key(params, name)

    def record_of(stored: ArchivedObject, first: int, last: int, rows: int,
                  oldest: datetime | None, newest: datetime | None) -> CatalogRecord:
        return _record(ctx, params, stored, first, last, rows, oldest, newest)

    return logs_recovery.Catalog(params.catalog_uri, params.id_column,
                                 params.created_at_column, key_of, record_of)


def _key(params: LogCleanupParams, name: str) -> str:
    return f"{params.catalog_prefix}/{name}" if params.catalog_prefix else name


def _result(ctx: JobContext, params: LogCleanupParams, archive: LogArchive | None,
            tally: _Tally, started: datetime, cutoff: datetime) -> JobResult:
    older = f"log rows older than {rfc3339(cutoff)}"
    where = f" to {archive.uri}" if archive else ""
    if ctx.dry_run:
        objects = -(-tally.eligible // params.batch_size) if archive else 0
        archived, deleted = (tally.eligible if archive else 0), tally.eligible
        state, code = "dry_run", ExitCode.OK
        message = f"dry run: would delete {deleted:,} {older}" + (
            f", archived first in {objects:,} objects{where}" if archive else "") + (
            f", dropping the partition(s) {', '.join(tally.partitions)} whole"
            if tally.partitions else "")
    else:
        objects, archived, deleted = tally.objects, tally.archived, tally.deleted
        if tally.interrupted:
            state = "interrupted"
            code = ctx.runtime.stop.exit_code or ExitCode.SIGTERM
            message = f"interrupted after deleting {deleted:,} {older}"
        elif tally.skipped_partitions:
            state, code = "warning", ExitCode.WARNING
            message = (f"deleted {deleted:,} {older}; {tally.skipped_partitions} "
                       "partition(s) detached to be archived were left for a run that "
                       "archives")
        elif tally.skipped_batches:
            state, code = "warning", ExitCode.WARNING
            message = (f"deleted {deleted:,} {older}; {tally.skipped_batches} batch(es) "
                       "changed while being archived and were left for the next run")
        elif tally.quarantined:
            state, code = "warning", ExitCode.WARNING
            message = (f"deleted {deleted:,} {older}; left {tally.quarantined} row(s) whose "
                       "created_at is no timestamp untouched")
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
        "quarantined_count": tally.quarantined,
        "archive_uri": archive.uri if archive else None,
        "partitions": tally.partitions,
        "batch_size": params.batch_size,
        "duration_ms": int((ctx.now() - started).total_seconds() * 1000),
    }
    return JobResult(SUMMARY_TYPE, message, state, code, fields)
