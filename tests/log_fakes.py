"""In-memory fakes of the ``logs.cleanup`` ports and the helpers its job tests share."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opsctl.domain.archive_names import MARKER_NAME
from opsctl.errors import ArchiveUnavailable
from opsctl.events import Emitter
from opsctl.jobs.context import JobContext
from opsctl.jobs.logs_cleanup import LogCleanupParams
from opsctl.ports import (
    ArchivedObject,
    CatalogRecord,
    LogBatch,
    PoisonRow,
    Settlement,
    StagedObject,
)
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
NEW = NOW - timedelta(days=1)


class FakeLogs:
    """Rows are ``id -> created_at``; every call is logged so tests can check the order."""

    def __init__(self, old: Sequence[int], new: Sequence[int] = ()) -> None:
        self.rows = {i: OLD for i in old} | {i: NEW for i in new}
        self.calls: list[str] = []
        self.refuse_delete: set[int] = set()  # first ids whose batch "changed"
        self.refusals = 0  # how many times each of those batches changes (0: always)
        self.catalog: list[CatalogRecord] = []
        self.poison: list[PoisonRow] = []
        self.changed: set[int] = set()  # rows whose content differs from any archive

    def poison_rows(self, cutoff: datetime) -> list[PoisonRow]:
        return self.poison

    def _eligible(self, cutoff: datetime, after: int | None) -> list[int]:
        return sorted(i for i, at in self.rows.items()
                      if at < cutoff and (after is None or i > after))

    def count_eligible(self, cutoff: datetime) -> int:
        self.calls.append("count")
        return len(self._eligible(cutoff, None))

    def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
        while ids := self._eligible(cutoff, None)[:size]:
            self.calls.append(f"delete {ids[0]}-{ids[-1]}")
            for i in ids:
                del self.rows[i]
            yield len(ids)

    def batches(self, cutoff: datetime, size: int,
                after_id: int | None = None) -> Generator[LogBatch, None, None]:
        while ids := self._eligible(cutoff, after_id)[:size]:
            self.calls.append(f"read {ids[0]}-{ids[-1]}")
            payload = b"".join(json.dumps({"id": i, "note": f"row {i}"}).encode() + b"\n"
                               for i in ids)
            yield LogBatch(ids[0], ids[-1], len(ids), f"v{sum(ids)}", payload, OLD, OLD)
            after_id = ids[-1]

    def delete_batch(self, batch: LogBatch, cutoff: datetime, record: CatalogRecord) -> bool:
        self.calls.append(f"delete {batch.first_id}-{batch.last_id}")
        if batch.first_id in self.refuse_delete:
            self.refusals -= 1
            if self.refusals != 0:
                return False
        for i in range(batch.first_id, batch.last_id + 1):
            if self.rows.get(i, cutoff) < cutoff:
                del self.rows[i]
        self.catalog.append(record)
        return True

    def settle_archived(self, rows: Mapping[int, Mapping[str, Any]], cutoff: datetime,
                        record: CatalogRecord) -> Settlement:
        self.calls.append(f"settle {sorted(rows)}")
        stale = sorted(i for i in rows if i in self.rows
                       and (i in self.changed or self.rows[i] >= cutoff))
        if stale:
            return Settlement(0, stale)
        deleted = sum(self.rows.pop(i, None) is not None for i in rows)
        self.catalog.append(record)
        return Settlement(deleted, [])

    def is_catalogued(self, uri: str, key: str) -> bool:
        return any((r.uri, r.key) == (uri, key) for r in self.catalog)


@dataclass
class FakeArchive:
    uri: str = "file:///archive/export_logs"
    objects: dict[str, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_write: str | None = None  # name whose write fails
    fail_verify: str | None = None
    staged: int = 0  # objects staged, and of those discarded unpublished
    discarded: int = 0
    markers: list[bytes] = field(default_factory=list)  # every marker written, in order

    def stage(self, payload: bytes) -> StagedObject:
        self.staged += 1
        return StagedObject(payload, payload, "sha")

    def discard(self, staged: StagedObject) -> None:
        self.discarded += 1

    def publish(self, name: str, staged: StagedObject) -> ArchivedObject:
        return self.write(name, staged.payload)

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        self.calls.append(f"write {name}")
        if name == self.fail_write:
            raise ArchiveUnavailable(f"cannot write {name}")
        if self.objects.get(name, payload) != payload:
            raise ArchiveUnavailable(f"{name} already exists with other content")
        self.objects[name] = payload
        return ArchivedObject(name, f"{self.uri}/{name}", len(payload), "sha")

    def verify(self, written: ArchivedObject) -> None:
        self.calls.append(f"verify {written.name}")
        if written.name == self.fail_verify:
            raise ArchiveUnavailable(f"{written.name} failed verification")

    def read(self, name: str) -> tuple[bytes, ArchivedObject] | None:
        self.calls.append(f"read {name}")
        data = self.objects.get(name)
        if data is None:
            return None
        return data, ArchivedObject(name, f"{self.uri}/{name}", len(data), "sha")

    def remove(self, name: str) -> None:
        self.calls.append(f"remove {name}")
        self.objects.pop(name, None)

    def write_marker(self, content: bytes) -> None:
        if self.fail_write == MARKER_NAME:
            raise ArchiveUnavailable("cannot write the marker")
        self.calls.append("write marker")
        self.markers.append(content)
        self.objects[MARKER_NAME] = content

    def read_marker(self) -> bytes | None:
        self.calls.append("read marker")
        return self.objects.get(MARKER_NAME)

    def remove_marker(self) -> None:
        self.calls.append("remove marker")
        self.objects.pop(MARKER_NAME, None)


def make_ctx(*, dry_run: bool = False) -> tuple[JobContext, io.StringIO]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, clock=lambda: NOW,
                      run_id="run-1", host="test-host")
    ctx = JobContext("logs.cleanup", runtime, Emitter(runtime, "logs.cleanup"), dry_run=dry_run)
    return ctx, out


def events(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def params(batch_size: int = 2, archive: bool = True, **more: Any) -> LogCleanupParams:
    return LogCleanupParams(retention_days=30, batch_size=batch_size, archive=archive,
                            catalog_uri="file:///archive", catalog_prefix="export_logs",
                            **more)


def name(first: int, last: int, run: str = "run-1") -> str:
    return f"{first:012d}-{last:012d}.{run}.jsonl.gz"


def objects_rows(archive: FakeArchive) -> dict[str, list[int]]:
    return {key: [json.loads(line)["id"] for line in data.splitlines()]
            for key, data in archive.objects.items() if key != MARKER_NAME}


def lines(*ids: int) -> bytes:
    return b"".join(json.dumps({"id": i, "note": f"row {i}"}).encode() + b"\n" for i in ids)


class FakeHeldLogs:
    """``HeldLogs`` over a ``FakeLogs``'s rows: a taken batch's rows are gone only once it
    commits (with its catalogue row); ``before_commit(batch)`` runs first in the lane."""

    def __init__(self, logs: FakeLogs) -> None:
        self.logs = logs
        self.lock = threading.Lock()
        self.held: set[int] = set()  # first ids of batches deleted, not yet committed
        self.before_commit: Callable[[LogBatch], None] = lambda batch: None

    def spans(self, cutoff: datetime, size: int) -> Generator[tuple[int | None, int], None, None]:
        after: int | None = None
        while ids := self.logs._eligible(cutoff, after)[:size]:
            with self.lock:
                self.logs.calls.append(f"span {ids[0]}-{ids[-1]}")
            yield after, ids[-1]
            after = ids[-1]

    def take(self, cutoff: datetime, after_id: int | None, last_id: int) -> FakeHeld | None:
        with self.lock:
            ids = [i for i in self.logs._eligible(cutoff, after_id) if i <= last_id]
            if not ids:
                return None
            self.logs.calls.append(f"take {ids[0]}-{ids[-1]}")
            self.held.add(ids[0])
        return FakeHeld(self, LogBatch(ids[0], ids[-1], len(ids), "", lines(*ids), OLD, OLD),
                        ids)


class FakeHeld:
    def __init__(self, owner: FakeHeldLogs, batch: LogBatch, ids: list[int]) -> None:
        self.owner, self.batch, self.ids = owner, batch, ids

    def commit(self, record: CatalogRecord) -> None:
        self.owner.before_commit(self.batch)
        with self.owner.lock:
            self.owner.held.discard(self.batch.first_id)
            self.owner.logs.calls.append(f"commit {self.batch.first_id}-{self.batch.last_id}")
            for i in self.ids:
                del self.owner.logs.rows[i]
            self.owner.logs.catalog.append(record)

    def release(self) -> None:
        with self.owner.lock:
            self.owner.held.discard(self.batch.first_id)
            self.owner.logs.calls.append(f"release {self.batch.first_id}-{self.batch.last_id}")
