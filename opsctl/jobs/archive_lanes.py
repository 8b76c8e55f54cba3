"""``logs.cleanup --archive`` on PostgreSQL: two batches at once, each deleted first in a
transaction held open until its object is written and verified (``HeldLogs``).

Each lane (a worker thread with a database connection of its own) takes one batch at a
time through every step: the delete that returns its lines (the server's work, the
longest step), then the object staged (compressed, written and flushed under a temporary
name), named in the in-flight marker, published, read back and verified, and finally the
delete committed together with the object's catalogue row. Two lanes keep both cores of a
small server busy: one batch's delete runs while the other's object is written, and the
server's JSON encoding, the compression and the fsyncs of the two overlap.

The guarantees are those of one batch at a time:

- **Archive before delete.** A batch's delete commits only after its object is verified;
  any failure before that rolls it back, and its rows stay.
- **The marker names every object in flight**: both lanes' objects, each added before it
  is published and dropped once its delete commits (the next write leaves it out). A
  ``kill -9`` leaves at most two objects published and not catalogued, and the next run
  settles each (``logs_recovery``): its rows are deleted where they still equal its lines,
  or the object is removed and its rows archived again.
- **Stops cleanly.** Once a stop is asked for (or a lane fails), no lane starts another
  batch; the batches already deleted are finished (or, after a failure, rolled back),
  and every batch committed is counted.

Events and counts are reported by the main thread, in id order.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime

from opsctl.domain.archive_names import object_name
from opsctl.jobs import logs_recovery
from opsctl.jobs.context import JobContext
from opsctl.ports import ArchivedObject, CatalogRecord, HeldLogs, LogArchive, LogBatch

# Batches in flight at once, each on its own connection. Two fill a two-core server;
# three measured slower there (the third only queues for a core).
LANES = 2

WRITTEN_EVENT = "export_log_archive_written"


@dataclass
class Archived:
    """What the lanes settled: counted by the caller as they come back."""

    rows: int = 0
    objects: int = 0
    interrupted: bool = False


class _InFlight:
    """The marker's list: objects published (or about to be) whose delete has not
    committed. Rewritten, under a lock, before each object is published."""

    def __init__(self, archive: LogArchive, cutoff: datetime, run_id: str) -> None:
        self.archive = archive
        self.cutoff = cutoff
        self.run_id = run_id
        self._lock = threading.Lock()
        self._objects: dict[str, LogBatch] = {}

    def add(self, name: str, batch: LogBatch) -> None:
        with self._lock:
            self._objects[name] = batch
            self.archive.write_marker(logs_recovery.marker(
                list(self._objects.items()), self.cutoff, self.run_id))

    def settled(self, name: str) -> None:
        with self._lock:
            self._objects.pop(name, None)


def run(ctx: JobContext, held: HeldLogs, archive: LogArchive, cutoff: datetime, size: int,
        record_of: Callable[[ArchivedObject, LogBatch], CatalogRecord],
        advance: Callable[[int], None], pause_s: float = 0.0) -> Archived:
    """Archive and delete every eligible batch; what was settled, even when a lane fails
    (then the failure is raised once the other lane has finished its batch).

    ``pause_s`` (``batch_pause_ms``) spares a busy primary: one lane, and a wait after
    each batch before the next starts."""
    lanes_wanted = 1 if pause_s > 0 else LANES
    run_id = ctx.runtime.run_id
    in_flight = _InFlight(archive, cutoff, run_id)
    stopping = threading.Event()
    done = Archived()

    def settle(after: int | None, last: int) -> tuple[LogBatch, ArchivedObject] | None:
        if stopping.is_set() or ctx.stop_requested:  # no batch starts after a stop
            return None
        taken = held.take(cutoff, after, last)
        if taken is None:
            return None
        batch = taken.batch
        try:
            staged = archive.stage(batch.payload)
            name = object_name(batch.first_id, batch.last_id, run_id)
            try:
                in_flight.add(name, batch)
            except BaseException:
                archive.discard(staged)
                raise
            written = archive.publish(name, staged)
            archive.verify(written)
            taken.commit(record_of(written, batch))
        except BaseException:
            taken.release()  # the rows stay; a published object stays named in the marker
            raise
        in_flight.settled(name)
        return batch, written

    def collect(future: Future[tuple[LogBatch, ArchivedObject] | None]) -> None:
        settled = future.result()
        if settled is None:
            return
        batch, written = settled
        done.rows += batch.rows
        done.objects += 1
        ctx.emitter.emit(
            WRITTEN_EVENT, f"archived log rows {batch.first_id}-{batch.last_id}",
            uri=written.uri, rows=batch.rows, bytes=written.bytes, sha256=written.sha256,
            first_id=batch.first_id, last_id=batch.last_id)
        advance(batch.rows)

    pending: deque[Future[tuple[LogBatch, ArchivedObject] | None]] = deque()
    with closing(held.spans(cutoff, size)) as spans, \
            ThreadPoolExecutor(lanes_wanted, thread_name_prefix="opsctl-lane") as lanes:
        try:
            for after, last in spans:
                if ctx.stop_requested:  # the batches queued are not started
                    stopping.set()
                    done.interrupted = True
                    break
                if pause_s > 0 and done.objects:
                    ctx.pause(pause_s)  # after the batch before; a stop ends the wait
                    if ctx.stop_requested:
                        stopping.set()
                        done.interrupted = True
                        break
                pending.append(lanes.submit(settle, after, last))
                # One more than the lanes, so the next batch starts the moment a lane
                # frees; with a pause, each batch is finished before the next is cut.
                while len(pending) > (lanes_wanted if pause_s <= 0 else 0):
                    collect(pending.popleft())
            while pending:
                collect(pending.popleft())
        except BaseException:
            stopping.set()
            _drain(pending, collect)
            raise
    return done


def _drain(pending: deque[Future[tuple[LogBatch, ArchivedObject] | None]],
           collect: Callable[[Future[tuple[LogBatch, ArchivedObject] | None]], None]) -> None:
    """Count what the other lanes committed after a failure; their failures are dropped
    (the first one is raised)."""
    while pending:
        future = pending.popleft()
        try:
            collect(future)
        except BaseException:  # noqa: S112 - the first failure is the one reported
            continue
