"""``logs.cleanup`` on a partitioned table: partitions wholly older than the cutoff go
whole, before the batches take the rest.

Each partition is detached, then (when archiving) read in batches into ordinary objects,
each written and verified exactly as a batch's is, and then catalogued and dropped in one
transaction: a partition is never dropped unless every one of its rows is in a verified
object. The objects are named with the run id noted on the partition when it was detached
and split at the same rows per object, so a run that finishes a partition an earlier run
was killed on writes the same names, and an object already there with the same content is
accepted, never duplicated.

A partition an earlier run detached in order to archive it is never dropped by a run that
does not archive: it is left for a run that does (``export_log_partition_skipped``,
exit 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from opsctl.domain.archive_names import object_name
from opsctl.jobs.context import JobContext
from opsctl.ports import (
    ArchivedObject,
    CatalogRecord,
    LogArchive,
    LogBatch,
    LogPartitions,
    Partition,
)

DROPPED_EVENT = "export_log_partition_dropped"
SKIPPED_EVENT = "export_log_partition_skipped"
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


def take(ctx: JobContext, port: LogPartitions, partitions: Sequence[Partition],
         archive: LogArchive | None, batch_size: int, record_of: RecordOf,
         advance: Callable[[int], None]) -> PartitionTally:
    tally = PartitionTally()
    for partition in partitions:
        if ctx.stop_requested:
            tally.interrupted = True
            return tally
        if archive is None and partition.archived:
            _skip(ctx, partition, tally)
            continue
        run_id = partition.run_id or ctx.runtime.run_id
        size = partition.batch_size or batch_size
        detached = port.detach(partition, run_id, size, archive is not None)
        with port.hold(detached) as held:
            records: list[CatalogRecord] = []
            if archive is not None:
                with closing(held.batches(size)) as batches:
                    for batch in batches:
                        if ctx.stop_requested:  # left detached: the next run finishes it
                            tally.interrupted = True
                            return tally
                        records.append(_write(ctx, archive, batch, run_id, record_of))
                        advance(batch.rows)
            rows = held.drop(records)
        if archive is None:
            advance(rows)
        tally.deleted += rows
        tally.archived += rows if archive is not None else 0
        tally.objects += len(records)
        tally.dropped.append(partition.name)
        ctx.emitter.emit(
            DROPPED_EVENT,
            f"dropped partition {partition.name} ({rows:,} rows"
            + (f", archived in {len(records):,} objects)" if archive else ")"),
            partition=partition.name, rows=rows, archived=archive is not None,
            archive_objects=len(records),
        )
    return tally


def _write(ctx: JobContext, archive: LogArchive, batch: LogBatch, run_id: str,
           record_of: RecordOf) -> CatalogRecord:
    written = archive.write(object_name(batch.first_id, batch.last_id, run_id), batch.payload)
    archive.verify(written)
    ctx.emitter.emit(
        WRITTEN_EVENT, f"archived log rows {batch.first_id}-{batch.last_id}",
        uri=written.uri, rows=batch.rows, bytes=written.bytes, sha256=written.sha256,
        first_id=batch.first_id, last_id=batch.last_id,
    )
    return record_of(written, batch)


def _skip(ctx: JobContext, partition: Partition, tally: PartitionTally) -> None:
    tally.skipped += 1
    ctx.emitter.emit(
        SKIPPED_EVENT,
        f"partition {partition.name} was detached by an earlier run to be archived; left "
        "in place for a run that archives",
        level="warning", partition=partition.name, rows=partition.rows,
        detached_by_run=partition.run_id,
    )
