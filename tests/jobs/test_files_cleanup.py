"""files.cleanup with in-memory fakes of its ports: counts, batching, limit, dry run, a
store that stops answering, and a stop request between batches."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsctl.errors import StorageUnavailable
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.files_cleanup import CleanupParams, CleanupPorts, run
from opsctl.ports import ExpiredExport, FileOutcome, Progress
from opsctl.runtime import Runtime, StopSignal

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@dataclass
class Row:
    id: int
    file_path: str
    size: int | None = 100
    status: str = "completed"
    expires_at: datetime = NOW - timedelta(days=1)


class FakeExports:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = {row.id: row for row in rows}
        self.batches: list[tuple[int | None, int]] = []
        self.marked: list[list[int]] = []

    def _candidates(self, now: datetime) -> list[Row]:
        return sorted((r for r in self.rows.values()
                       if r.expires_at < now and r.status != "expired"),
                      key=lambda r: (r.expires_at, r.id))

    def count(self, now: datetime) -> int:
        return len(self._candidates(now))

    def batch(self, now: datetime, after: ExpiredExport | None,
              size: int) -> list[ExpiredExport]:
        self.batches.append((None if after is None else after.id, size))
        rows = [r for r in self._candidates(now)
                if after is None or (r.expires_at, r.id) > (after.position, after.id)]
        return [ExpiredExport(r.id, f"e{r.id}", r.file_path, r.size, position=r.expires_at)
                for r in rows[:size]]

    def mark_expired(self, ids: list[int]) -> int:
        self.marked.append(list(ids))
        for i in ids:
            self.rows[i].status = "expired"
        return len(ids)


@dataclass
class FakeStore:
    files: dict[str, int]  # path -> real size
    refused: set[str] = field(default_factory=set)
    max_chunk: int = 1000
    backend: str = "fake"
    fail_on_call: int | None = None  # 1-based call that raises StorageUnavailable
    on_call: Callable[[int], None] | None = None
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    def _each(self, kind: str, items: list[ExpiredExport]) -> list[FileOutcome]:
        self.calls.append((kind, [i.file_path for i in items]))
        if self.on_call:
            self.on_call(len(self.calls))
        if self.fail_on_call == len(self.calls):
            raise StorageUnavailable("s3://bucket/: endpoint unreachable")
        outcomes = []
        for i in items:
            if i.file_path in self.refused:
                outcomes.append(FileOutcome(i, "failed", 0, "unsafe_path", "refused"))
            elif i.file_path not in self.files:
                outcomes.append(FileOutcome(i, "missing"))
            else:
                size = i.file_size_bytes if i.file_size_bytes is not None else self.files[
                    i.file_path]
                if kind == "delete":
                    del self.files[i.file_path]
                outcomes.append(FileOutcome(i, "deleted", size))
        return outcomes

    def delete(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        return self._each("delete", files)

    def check(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        return self._each("check", files)


@dataclass
class FakeProgress:
    opened: list[tuple[str, int | None, str]] = field(default_factory=list)
    advanced: list[int] = field(default_factory=list)
    closed: int = 0

    def __call__(self, description: str, total: int | None, unit: str) -> Progress:
        self.opened.append((description, total, unit))
        return self

    def advance(self, amount: int = 1) -> None:
        self.advanced.append(amount)

    def close(self) -> None:
        self.closed += 1


@dataclass
class Harness:
    exports: FakeExports
    store: FakeStore
    out: io.StringIO
    runtime: Runtime
    progress: FakeProgress

    def run(self, *, dry_run: bool = False, **params: Any) -> Any:
        ctx = JobContext("files.cleanup", self.runtime,
                         Emitter(self.runtime, "files.cleanup"), dry_run=dry_run,
                         progress=self.progress)
        return run(ctx, CleanupPorts(self.exports, self.store), CleanupParams(**params))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


def harness(rows: list[Row], files: dict[str, int], **store: Any) -> Harness:
    out = io.StringIO()
    # The run starts at NOW; every later reading (end of run, event stamps) is 1.234 s on.
    ticks = [NOW]
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={},
                      clock=lambda: ticks.pop() if ticks else NOW + timedelta(seconds=1.234))
    return Harness(FakeExports(rows), FakeStore(files, **store), out, runtime, FakeProgress())


def mixed() -> Harness:
    rows = [Row(1, "a.json", 100), Row(2, "gone.json", 200), Row(3, "../evil", 300),
            Row(4, "b.json", None), Row(5, "future.json", 50, expires_at=NOW + timedelta(1)),
            Row(6, "old.json", 70, status="expired")]
    return harness(rows, {"a.json": 1, "b.json": 4096, "future.json": 1, "old.json": 1},
                   refused={"../evil"})


def test_counts_bytes_and_rows_marked() -> None:
    h = mixed()
    result = h.run(batch_size=500)
    assert result.summary() == {
        "dry_run": False, "candidates": 4, "deleted_count": 2, "missing_count": 1,
        "failed_count": 1, "bytes_freed": 100 + 4096, "duration_ms": 1234,
        "backend": "fake", "limit": None, "state": "partial", "exit_code": 1,
    }
    assert result.exit_code is ExitCode.WARNING
    # deleted and missing rows are marked in one UPDATE; the refused one is left alone
    assert h.exports.marked == [[1, 2, 4]]
    assert h.exports.rows[3].status == "completed"
    assert h.exports.rows[5].status == "completed"  # not expired yet
    assert set(h.store.files) == {"future.json", "old.json"}
    [event] = h.events()
    assert event["type"] == "export_file_cleanup_error"
    assert event["level"] == "error"
    assert event["export_id"] == "e3"
    assert event["file_path"] == "../evil"
    assert event["error"] == {"kind": "unsafe_path", "message": "refused"}
    assert event["dry_run"] is False
    assert "status" not in event


def test_all_done_is_ok() -> None:
    h = harness([Row(1, "a", 10), Row(2, "b", 20)], {"a": 1, "b": 1})
    result = h.run()
    assert (result.state, result.exit_code) == ("ok", ExitCode.OK)
    assert (result.fields["deleted_count"], result.fields["bytes_freed"]) == (2, 30)
    assert h.events() == []


def test_nothing_to_do_is_ok_without_touching_the_store() -> None:
    h = harness([], {})
    result = h.run()
    assert (result.state, result.exit_code, result.fields["candidates"]) == ("ok", 0, 0)
    assert h.store.calls == [] and h.exports.marked == []


def test_keyset_batches_and_one_update_per_batch() -> None:
    rows = [Row(i, f"f{i}", 1) for i in (3, 5, 8, 13, 21)]
    h = harness(rows, {f"f{i}": 1 for i in (3, 5, 8, 13, 21)})
    result = h.run(batch_size=2)
    assert h.exports.batches == [(None, 2), (5, 2), (13, 2), (21, 2)]
    assert h.exports.marked == [[3, 5], [8, 13], [21]]
    assert result.fields["deleted_count"] == 5
    assert h.progress.opened == [("deleting expired files", 5, "files")]
    assert h.progress.advanced == [2, 2, 1]
    assert h.progress.closed == 1


def test_failed_rows_are_stepped_over_not_fetched_again() -> None:
    rows = [Row(1, "bad1"), Row(2, "bad2"), Row(3, "ok")]
    h = harness(rows, {"ok": 1}, refused={"bad1", "bad2"})
    result = h.run(batch_size=2)
    assert h.exports.batches == [(None, 2), (2, 2), (3, 2)]
    assert result.fields["failed_count"] == 2 and result.fields["deleted_count"] == 1


def test_limit_caps_files_handled() -> None:
    rows = [Row(i, f"f{i}", 1) for i in range(1, 8)]
    h = harness(rows, {f"f{i}": 1 for i in range(1, 8)})
    result = h.run(batch_size=2, limit=3)
    assert h.exports.batches == [(None, 2), (2, 1)]
    assert result.fields["deleted_count"] == 3
    assert result.fields["candidates"] == 7
    assert result.fields["limit"] == 3
    assert h.progress.opened == [("deleting expired files", 3, "files")]
    assert sorted(h.store.files) == ["f4", "f5", "f6", "f7"]


def test_store_chunks_within_a_batch() -> None:
    rows = [Row(i, f"f{i}", 1) for i in range(1, 6)]
    h = harness(rows, {f"f{i}": 1 for i in range(1, 6)}, max_chunk=2)
    h.run(batch_size=5)
    assert [paths for _, paths in h.store.calls] == [["f1", "f2"], ["f3", "f4"], ["f5"]]
    assert h.exports.marked == [[1, 2, 3, 4, 5]]


def test_dry_run_predicts_through_the_same_walk_and_writes_nothing() -> None:
    h = mixed()
    result = h.run(dry_run=True, batch_size=2, sample_size=3)
    assert result.summary() == {
        "dry_run": True, "candidates": 4, "deleted_count": 2, "missing_count": 1,
        "failed_count": 1, "bytes_freed": 4196, "duration_ms": 1234,
        "backend": "fake", "limit": None, "state": "dry_run", "exit_code": 1,
    }
    assert {kind for kind, _ in h.store.calls} == {"check"}
    assert h.exports.marked == []
    assert set(h.store.files) == {"a.json", "b.json", "future.json", "old.json"}
    assert result.extra["sample"] == [
        {"file_path": "a.json", "size": 100, "state": "deleted"},
        {"file_path": "gone.json", "size": 0, "state": "missing"},
        {"file_path": "../evil", "size": 0, "state": "failed"},
    ]
    assert h.progress.opened[0][0] == "checking expired files"
    [event] = h.events()
    assert event["dry_run"] is True and event["message"].startswith("would refuse")


def test_clean_dry_run_exits_zero() -> None:
    h = harness([Row(1, "a", 10)], {"a": 1})
    result = h.run(dry_run=True)
    assert (result.state, result.exit_code, result.fields["bytes_freed"]) == ("dry_run", 0, 10)
    assert h.store.files == {"a": 1}


def test_store_unreachable_before_anything_was_done_raises() -> None:
    h = harness([Row(1, "a"), Row(2, "b")], {"a": 1, "b": 1}, fail_on_call=1)
    with pytest.raises(StorageUnavailable):
        h.run()
    assert h.exports.marked == []
    assert h.progress.closed == 1


def test_store_unreachable_midway_marks_what_was_done_and_exits_1() -> None:
    rows = [Row(i, f"f{i}", 10) for i in range(1, 7)]
    h = harness(rows, {f"f{i}": 1 for i in range(1, 7)}, max_chunk=2, fail_on_call=2)
    result = h.run(batch_size=4)
    # chunk 1 (f1, f2) was deleted, chunk 2 failed: only the first chunk's rows are marked
    assert h.exports.marked == [[1, 2]]
    # the next batch was already fetched (overlapping the deletes) but never handled
    assert h.exports.batches == [(None, 4), (4, 4)]
    assert len(h.store.calls) == 2
    assert sorted(h.store.files) == ["f3", "f4", "f5", "f6"]
    assert (result.state, result.exit_code) == ("partial", ExitCode.WARNING)
    assert result.fields["deleted_count"] == 2 and result.fields["bytes_freed"] == 20
    assert result.fields["error"] == {"kind": "storage_unavailable",
                                      "message": "s3://bucket/: endpoint unreachable"}
    assert result.message.endswith("stopped early: s3://bucket/: endpoint unreachable")


def test_stop_request_ends_after_the_current_batch() -> None:
    rows = [Row(i, f"f{i}", 1) for i in range(1, 10)]
    h = harness(rows, {f"f{i}": 1 for i in range(1, 10)})
    h.runtime.stop.cooperative = True

    def sigterm_during_second_batch(call: int) -> None:
        if call == 2:
            h.runtime.stop.request(ExitCode.SIGTERM)

    h.store.on_call = sigterm_during_second_batch
    result = h.run(batch_size=3)
    assert h.exports.marked == [[1, 2, 3], [4, 5, 6]]
    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGTERM)
    assert result.summary()["exit_code"] == 143
    assert result.fields["deleted_count"] == 6
    assert sorted(h.store.files) == ["f7", "f8", "f9"]


class RecordingStop(StopSignal):
    """The real StopSignal, recording pauses instead of sleeping (and able to stop)."""

    def __init__(self, log: list[str], stop_at_pause: int | None = None) -> None:
        super().__init__()
        self.log = log
        self.stop_at_pause = stop_at_pause

    def wait(self, seconds: float) -> bool:
        self.log.append(f"pause {seconds:g}")
        if self.stop_at_pause == sum(entry.startswith("pause") for entry in self.log):
            self.cooperative = True
            self.request(ExitCode.SIGTERM)
        return self.requested


def paused_harness(count: int, log: list[str], stop_at_pause: int | None = None) -> Harness:
    rows = [Row(n, f"f{n}") for n in range(1, count + 1)]
    h = harness(rows, {f"f{n}": 1 for n in range(1, count + 1)})
    h.runtime.stop = RecordingStop(log, stop_at_pause)
    mark = h.exports.mark_expired

    def marking(ids: list[int]) -> int:
        log.append(f"mark {len(ids)}")
        return mark(ids)

    h.exports.mark_expired = marking  # type: ignore[method-assign]
    return h


def test_batch_pause_rests_after_each_full_batch_once_its_rows_are_marked() -> None:
    log: list[str] = []
    result = paused_harness(7, log).run(batch_size=3, batch_pause_ms=250)
    assert result.fields["deleted_count"] == 7
    # No pause after the short last batch, and each pause follows its batch's UPDATE.
    assert log == ["mark 3", "pause 0.25", "mark 3", "pause 0.25", "mark 1"]


def test_no_pause_by_default() -> None:
    log: list[str] = []
    paused_harness(7, log).run(batch_size=3)
    assert not any(entry.startswith("pause") for entry in log)


def test_a_stop_during_a_pause_ends_the_run_with_its_summary() -> None:
    log: list[str] = []
    h = paused_harness(9, log, stop_at_pause=1)
    result = h.run(batch_size=3, batch_pause_ms=60_000)
    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGTERM)
    assert result.fields["deleted_count"] == 3
    assert log == ["mark 3", "pause 60"]
    assert sorted(h.exports.rows[n].status for n in range(1, 10)) == ["completed"] * 6 + [
        "expired"] * 3


def test_stop_signal_wait_returns_at_once_when_stopped() -> None:
    stop = StopSignal()
    stop.cooperative = True
    stop.request(ExitCode.SIGTERM)
    assert stop.wait(3600) is True  # would hang the test for an hour otherwise
    assert StopSignal().wait(0) is False
