"""``logs.restore`` on in-memory fakes of its ports: which objects it reads, what a bad
object leaves behind, and how a stop request ends it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import logs_restore
from opsctl.jobs.context import JobContext
from opsctl.ports import CatalogEntry, LoadCounts, RestoreWindow, StoredObject
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 20, tzinfo=UTC)
ROOT = "file:///archive"


def body(ids: range) -> bytes:
    lines = "".join(json.dumps({"id": i, "created_at": "x"}) + "\n" for i in ids)
    return gzip.compress(lines.encode(), mtime=0)


@dataclass
class Objects:
    data: dict[str, bytes]
    uri: str = ROOT
    parallel_reads: int = 1

    def listing(self) -> Iterator[StoredObject]:
        for key in sorted(self.data):
            yield StoredObject(f"{ROOT}/{key}", key, len(self.data[key]))

    def chunks(self, obj: StoredObject) -> Iterator[bytes]:
        yield self.data[obj.key]


@dataclass
class Catalog:
    rows: list[CatalogEntry]

    def entries(self, uri: str) -> list[CatalogEntry]:
        return self.rows


@dataclass
class Load:
    target: Target
    blocks: list[bytes] = field(default_factory=list)

    def add(self, block: bytes) -> None:
        self.blocks.append(block)

    def finish(self) -> LoadCounts:
        rows = b"".join(self.blocks).count(b"\n")
        self.target.written += rows
        return LoadCounts(rows, rows)

    def abort(self) -> None:
        self.target.aborted += 1


@dataclass
class Target:
    table: str = "export_logs"
    written: int = 0
    aborted: int = 0
    loads: int = 0

    def check(self) -> None:
        pass

    def load(self, window: RestoreWindow, dry_run: bool) -> Load:
        self.loads += 1
        return Load(self)

    def flush(self) -> LoadCounts:
        return LoadCounts(0, 0)

    def close(self) -> None:
        pass


def entry(key: str, data: bytes, ids: range, day: int, table: str = "export_logs"
          ) -> CatalogEntry:
    moment = NOW - timedelta(days=day)
    return CatalogEntry(f"{ROOT}/{key}", table, ids[0], ids[-1], len(ids), len(data),
                        hashlib.sha256(data).hexdigest(), moment, moment + timedelta(hours=1))


def ctx() -> JobContext:
    runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={}, clock=lambda: NOW)
    return JobContext("logs.restore", runtime, Emitter(runtime, "logs.restore"))


def events(job_ctx: JobContext) -> list[dict[str, object]]:
    out = job_ctx.runtime.stdout
    assert isinstance(out, io.StringIO)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_objects_outside_the_window_or_of_another_table_are_not_read() -> None:
    a, b, c = body(range(1, 4)), body(range(4, 7)), body(range(7, 9))
    data = {"export_logs/000000000001-000000000003.jsonl.gz": a,
            "export_logs/000000000004-000000000006.jsonl.gz": b,
            "other/000000000007-000000000008.jsonl.gz": c,
            "export_logs/.inflight.json": b"{}"}
    keys = sorted(k for k in data if k.endswith(".gz"))
    catalog = [entry(keys[0], a, range(1, 4), day=40), entry(keys[1], b, range(4, 7), day=10)]
    target = Target()
    window = RestoreWindow(NOW - timedelta(days=20), None)

    result = logs_restore.run(ctx(), logs_restore.RestorePorts(Objects(data), Catalog(catalog),
                                                               target),
                              logs_restore.RestoreParams("export_logs", window))

    assert result.exit_code == ExitCode.OK
    assert (result.fields["objects"], result.fields["objects_skipped"]) == (1, 2)
    assert target.written == 3 and target.loads == 1


def test_a_bad_object_is_aborted_and_the_run_goes_on() -> None:
    good, bad = body(range(1, 3)), body(range(3, 5))
    data = {"000000000001-000000000002.jsonl.gz": good,
            "000000000003-000000000004.jsonl.gz": bad[:-5]}
    target = Target()
    job_ctx = ctx()

    result = logs_restore.run(job_ctx, logs_restore.RestorePorts(
        Objects(data), Catalog([]), target), logs_restore.RestoreParams("export_logs"))

    assert (result.exit_code, result.state) == (ExitCode.WARNING, "partial")
    assert (target.written, target.aborted, result.fields["objects_failed"]) == (2, 1, 1)
    failed = [e for e in events(job_ctx) if e["type"] == "export_log_restore_object_failed"]
    assert len(failed) == 1 and "truncated" in str(failed[0]["reason"])


def test_a_stop_request_ends_between_objects() -> None:
    data = {f"{i:012d}-{i:012d}.jsonl.gz": body(range(i, i + 1)) for i in (1, 2, 3)}
    job_ctx = ctx()
    job_ctx.runtime.stop.cooperative = True
    job_ctx.runtime.stop.request(ExitCode.SIGTERM)

    result = logs_restore.run(job_ctx, logs_restore.RestorePorts(
        Objects(data), Catalog([]), Target()), logs_restore.RestoreParams("export_logs"))

    assert result.state == "interrupted"
    assert result.fields["objects"] == 0


def test_since_must_be_before_until() -> None:
    with pytest.raises(ValueError, match="before"):
        logs_restore.RestoreParams("t", RestoreWindow(NOW, NOW))
