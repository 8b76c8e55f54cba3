"""Whole partitions of a partitioned export-log table, taken by ``logs cleanup`` at once.

A partition whose rows are all older than the cutoff goes whole: detached from the table,
archived from the detached table (nothing can change it there), then catalogued and
dropped in one transaction. A partition stays *detached* between those steps, and a run
killed there leaves it so: the next run finds it by the note the detaching run left on it
and finishes it, naming its objects as that run did, so an object already written is found
identical instead of being written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from opsctl.ports.logs import CatalogRecord, LogBatch


@dataclass(frozen=True)
class Partition:
    """A partition to take whole: attached with an upper bound at or before the cutoff,
    or left detached by an earlier run."""

    name: str  # schema-qualified, as people read it
    rows: int  # counted when listed (the guard's figure); the drop counts again, held
    upper: datetime | None  # its range's upper bound (as noted, once detached)
    detached: bool = False
    pending: bool = False  # a detach begun CONCURRENTLY and cut short: to be finalized
    # What the run that detached it noted: its objects' run id, rows per object, whether
    # it archived and where. None while attached.
    run_id: str | None = None
    batch_size: int | None = None
    archived: bool | None = None
    archive_uri: str | None = None

    @property
    def begun(self) -> bool:
        """Detached (or being detached) by an earlier run: no longer in the table."""
        return self.detached or self.pending


@dataclass(frozen=True)
class PartitionPlan:
    """What a cleanup takes from a partitioned table at one cutoff."""

    whole: Sequence[Partition]
    # Every row older than the cutoff: those of the whole partitions (and of partitions
    # left detached), plus those of the other partitions, counted partition by partition
    # so no whole partition is counted twice.
    eligible: int
    # Partitions that would be whole but that this login does not own (detaching and
    # dropping need the owner): their rows go in batches.
    not_owned: Sequence[str] = ()


class HeldPartition(Protocol):
    """A detached partition locked against writes until it is dropped or released."""

    def batches(self, size: int) -> Generator[LogBatch, None, None]:
        """Its rows in id order, ``size`` per batch; close the generator when done."""

    def drop(self, records: Sequence[CatalogRecord], archived: bool) -> int:
        """Catalogue ``records`` and drop the table in one transaction; the rows it held,
        counted under the lock. When ``archived``, raises (dropping nothing) unless the
        records hold exactly its rows."""

    def drop_meanwhile(self) -> Callable[[], int]:
        """``drop((), archived=False)`` begun now and carried on while the caller does
        other work; the call returned waits for it and gives the rows it held (or raises
        what the drop raised)."""


class LogPartitions(Protocol):
    def plan(self, cutoff: datetime, whole: bool = True) -> PartitionPlan | None:
        """None unless the table is RANGE partitioned on ``created_at``. The partitions to
        take whole at this cutoff: first those an earlier run began to detach, then (with
        ``whole``) every attached partition whose upper bound is at or before it, oldest
        first."""

    def detach(self, partition: Partition, run_id: str, batch_size: int,
               archive_uri: str | None) -> Partition:
        """Note the plan on the partition (``archive_uri`` None: no archive), then detach
        it from the table (concurrently where the server allows it). Idempotent for a
        partition already detached."""

    def hold(self, partition: Partition) -> AbstractContextManager[HeldPartition]:
        """Lock a detached partition against writes for archiving and dropping; leaving
        the block without ``drop`` releases it untouched."""
