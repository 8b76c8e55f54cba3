"""``logs.cleanup`` on a partitioned table: partitions wholly older than the cutoff go
whole, before the batches take the rest.

Each partition is detached, then (when archiving) read in batches into ordinary objects,
each written and verified exactly as a batch's is, and then catalogued and dropped in one
transaction: a partition is never dropped unless every one of its rows is in a verified
object. The objects are named with the run id noted on the partition when it was detached
and split at the same rows per object, so a run that finishes a partition an earlier run
was killed on writes the same names, and an object already there with the same content is
accepted, never duplicated.

A partition an earlier run detached is finished only as that run meant it (see
``left_alone``): never against this run's retention, without the archive it was detached
for, or into a second archive; otherwise it is left for a run that can
(``export_log_partition_skipped``, exit 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import datetime

from opsctl.domain.archive_names import object_name
from opsctl.jobs.archive_staging import staged_ahead
from opsctl.jobs.context import JobContext
from opsctl.ports import (
    ArchivedObject,
    CatalogRecord,
    LogArchive,
    LogBatch,
    LogPartitions,
    Partition,
    StagedObject,
)

DROPPED_EVENT = "export_log_partition_dropped"
SKIPPED_EVENT = "export_log_partition_skipped"
IN_BATCHES_EVENT = "export_log_partition_in_batches"
WRITTEN_EVENT = "export_log_archive_written"

# What a batch's catalog row is built from: the stored object and the batch it holds.
RecordOf = Callable[[ArchivedObject, LogBatch], CatalogRecord]


@dataclass
class PartitionTally:
    deleted: int = 0
    archived: int = 0
    objects: int = 0
    dropped: list[str] = field(default_factory=list)
    skipped: int = 0
    interrupted: bool = False


@dataclass(frozen=True)
class Settings:
    """What of the run's parameters decides how partitions go."""

    cutoff: datetime
    batch_size: int
    catalog_uri: str  # the archive root as configured (noted on a partition)
    drop_partitions: bool = True


@dataclass(frozen=True)
class Survey:
    """The partitions a run takes whole and what the rest of the run counts with them."""

    whole: Sequence[Partition]
    eligible: int
    droppable: Sequence[str]  # the whole partitions this run drops (a dry run names them)
    table_rows: Callable[[], int] | None  # the guard's table size, detached rows included


def survey(ctx: JobContext, port: LogPartitions | None, archive: LogArchive | None,
           settings: Settings, count_eligible: Callable[[], int],
           table_rows: Callable[[], int] | None) -> Survey:
    plan = port.plan(settings.cutoff, whole=settings.drop_partitions) if port else None
    if plan is None:
        return Survey([], count_eligible(), [], table_rows)
    report_not_owned(ctx, plan.not_owned)
    begun = [p for p in plan.whole if p.begun]
    # Rows left detached by an earlier run are no longer counted through the table: they
    # are eligible unless newer than this cutoff, and part of the table for the guard.
    newer = sum(p.rows for p in begun if p.upper is not None and p.upper > settings.cutoff)
    detached = sum(p.rows for p in begun)
    rows = table_rows
    if table_rows is not None and detached:
        def rows() -> int:
            return table_rows() + detached
    droppable = [p.name for p in plan.whole if left_alone(p, archive, settings) is None]
    return Survey(plan.whole, plan.eligible - newer, droppable, rows)


def left_alone(partition: Partition, archive: LogArchive | None,
               settings: Settings) -> str | None:
    """Why a partition an earlier run began to detach is not finished by this run, or
    None. Such a partition is never dropped against this run's retention or without the
    archive it was detached for, nor archived to a second place."""
    if not partition.begun:
        return None
    if not settings.drop_partitions:
        return "[logs] drop_partitions is false"
    if partition.upper is not None and partition.upper > settings.cutoff:
        return "its rows are not all older than this run's cutoff"
    if partition.archived and archive is None:
        return "it was detached to be archived and this run does not archive"
    if (archive is not None and partition.archive_uri is not None
            and partition.archive_uri != settings.catalog_uri):
        return f"it is being archived to {partition.archive_uri}"
    return None


def take(ctx: JobContext, port: LogPartitions, partitions: Sequence[Partition],
         archive: LogArchive | None, settings: Settings, record_of: RecordOf,
         advance: Callable[[int], None],
         meanwhile: Callable[[], None] | None = None) -> PartitionTally:
    """Take the partitions; ``meanwhile`` (the batches of the rest of the table) runs once
    the partitions are held, and, without an archive, while they are counted and dropped:
    at 10M rows counting a month and freeing its files cost as much as those batches."""
    tally = PartitionTally()
    if archive is None:
        _drop_whole(ctx, port, partitions, settings, advance, tally, meanwhile)
        return tally
    for partition in partitions:
        if ctx.stop_requested:
            tally.interrupted = True
            return tally
        reason = left_alone(partition, archive, settings)
        if reason is not None:
            _skip(ctx, partition, reason, tally)
            continue
        run_id = partition.run_id or ctx.runtime.run_id
        size = partition.batch_size or settings.batch_size
        detached = port.detach(partition, run_id, size, settings.catalog_uri)
        with port.hold(detached) as held:
            records: list[CatalogRecord] = []
            with closing(held.batches(size)) as batches, \
                    closing(staged_ahead(archive, batches)) as staged_batches:
                for batch, staged in staged_batches:
                    if ctx.stop_requested:  # left detached: the next run finishes it
                        archive.discard(staged)
                        tally.interrupted = True
                        return tally
                    records.append(_write(ctx, archive, batch, staged, run_id, record_of))
                    advance(batch.rows)
            rows = held.drop(records, archived=True)
        _dropped(ctx, partition, rows, len(records), True, tally)
        tally.archived += sum(record.rows for record in records)
        tally.objects += len(records)
    if meanwhile is not None:
        meanwhile()
    return tally


def _drop_whole(ctx: JobContext, port: LogPartitions, partitions: Sequence[Partition],
                settings: Settings, advance: Callable[[int], None], tally: PartitionTally,
                meanwhile: Callable[[], None] | None) -> None:
    """Without an archive nothing of a partition is read: each is detached and held, then
    counted and dropped on its own connection while ``meanwhile`` runs. A partition whose
    drop is under way is finished and reported even when ``meanwhile`` fails or a stop
    comes; one not yet detached waits for the next run."""
    dropping: list[tuple[Partition, Callable[[], int]]] = []
    with ExitStack() as stack:
        try:
            for partition in partitions:
                if ctx.stop_requested:
                    tally.interrupted = True
                    break
                reason = left_alone(partition, None, settings)
                if reason is not None:
                    _skip(ctx, partition, reason, tally)
                    continue
                detached = port.detach(partition, partition.run_id or ctx.runtime.run_id,
                                       partition.batch_size or settings.batch_size, None)
                held = stack.enter_context(port.hold(detached))
                dropping.append((partition, held.drop_meanwhile()))
            if meanwhile is not None and not tally.interrupted:
                meanwhile()
        finally:
            for partition, finish in dropping:
                rows = finish()
                advance(rows)
                _dropped(ctx, partition, rows, 0, False, tally)


def _dropped(ctx: JobContext, partition: Partition, rows: int, objects: int,
             archived: bool, tally: PartitionTally) -> None:
    tally.deleted += rows
    tally.dropped.append(partition.name)
    ctx.emitter.emit(
        DROPPED_EVENT,
        f"dropped partition {partition.name} ({rows:,} rows"
        + (f", archived in {objects:,} objects)" if archived else ")"),
        partition=partition.name, rows=rows, archived=archived, archive_objects=objects,
    )


def report_not_owned(ctx: JobContext, names: Sequence[str]) -> None:
    for name in names:
        ctx.emitter.emit(
            IN_BATCHES_EVENT,
            f"partition {name} is older than the cutoff but this login does not own it "
            "(detaching and dropping need the owner): its rows are deleted in batches",
            level="warning", partition=name, reason="not the owner")


def _write(ctx: JobContext, archive: LogArchive, batch: LogBatch, staged: StagedObject,
           run_id: str, record_of: RecordOf) -> CatalogRecord:
    written = archive.publish(object_name(batch.first_id, batch.last_id, run_id), staged)
    archive.verify(written)
    ctx.emitter.emit(
        WRITTEN_EVENT, f"archived log rows {batch.first_id}-{batch.last_id}",
        uri=written.uri, rows=batch.rows, bytes=written.bytes, sha256=written.sha256,
        first_id=batch.first_id, last_id=batch.last_id,
    )
    return record_of(written, batch)


def _skip(ctx: JobContext, partition: Partition, reason: str, tally: PartitionTally) -> None:
    tally.skipped += 1
    ctx.emitter.emit(
        SKIPPED_EVENT,
        f"partition {partition.name}, detached by an earlier run, is left as it is: "
        f"{reason}",
        level="warning", partition=partition.name, rows=partition.rows, reason=reason,
        detached_by_run=partition.run_id,
    )
