"""``logs.cleanup`` with whole partitions, against in-memory fakes: the order of detach,
archive, verify and drop, the names a finished partition's objects get, what a stop or a
run without archive leaves, and what a dry run reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

import pytest
from log_fakes import NEW, OLD, FakeArchive, FakeLogs, events, make_ctx, name, params

from opsctl.domain.deletion_guard import GuardLimits
from opsctl.exit_codes import ExitCode
from opsctl.jobs import logs_cleanup
from opsctl.jobs.deletion_guard import DeletionGuard
from opsctl.jobs.logs_cleanup import LogCleanupPorts
from opsctl.ports import CatalogRecord, LogBatch, Partition, PartitionPlan


class FakePartitions:
    """Partitions are ``name -> ids``; every step is logged so tests can check the order."""

    def __init__(self, partitions: Sequence[Partition], rows: dict[str, list[int]],
                 table: FakeLogs) -> None:
        self.partitions = list(partitions)
        self.rows = rows
        self.table = table  # attached partitions' rows are the table's rows too
        for partition in partitions:
            if not partition.begun:
                table.rows.update(dict.fromkeys(rows[partition.name], OLD))
        self.calls: list[str] = []
        self.catalog: list[CatalogRecord] = []
        self.on_batch = lambda: None

    def plan(self, cutoff: datetime, whole: bool = True) -> PartitionPlan:
        eligible = self.table.count_eligible(cutoff) + sum(
            p.rows for p in self.partitions if p.begun)
        return PartitionPlan(self.partitions, eligible)

    def detach(self, partition: Partition, run_id: str, batch_size: int,
               archive_uri: str | None) -> Partition:
        if partition.detached:
            return partition
        self.calls.append(f"detach {partition.name}")
        for i in self.rows[partition.name]:
            del self.table.rows[i]
        return replace(partition, detached=True, run_id=run_id, batch_size=batch_size,
                       archived=archive_uri is not None, archive_uri=archive_uri)

    @contextmanager
    def hold(self, partition: Partition) -> Iterator[_Held]:
        assert partition.detached
        self.calls.append(f"hold {partition.name}")
        yield _Held(self, partition)


class _Held:
    def __init__(self, owner: FakePartitions, partition: Partition) -> None:
        self.owner = owner
        self.partition = partition

    def batches(self, size: int) -> Generator[LogBatch, None, None]:
        ids = self.owner.rows[self.partition.name]
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size]
            self.owner.on_batch()
            payload = b"".join(json.dumps({"id": i}).encode() + b"\n" for i in chunk)
            yield LogBatch(chunk[0], chunk[-1], len(chunk), "v", payload, OLD, OLD)

    def drop(self, records: Sequence[CatalogRecord], archived: bool) -> int:
        rows = len(self.owner.rows.pop(self.partition.name))
        assert not archived or sum(r.rows for r in records) == rows
        self.owner.catalog += records
        self.owner.calls.append(f"drop {self.partition.name} {len(records)}")
        return rows

    def drop_meanwhile(self) -> Callable[[], int]:
        self.owner.calls.append(f"dropping {self.partition.name}")
        return lambda: self.drop((), archived=False)


def two_partitions(table: FakeLogs) -> FakePartitions:
    return FakePartitions(
        [Partition("public.p1", 3, OLD), Partition("public.p2", 2, OLD)],
        {"public.p1": [1, 2, 3], "public.p2": [4, 5]}, table)


def test_whole_partitions_are_archived_then_dropped_before_the_batches() -> None:
    logs, archive = FakeLogs(old=[6, 7], new=[8]), FakeArchive()
    partitions = two_partitions(logs)
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive, partitions=partitions),
                              params(batch_size=2))

    assert result.exit_code == ExitCode.OK
    assert partitions.calls == ["detach public.p1", "hold public.p1", "drop public.p1 2",
                                "detach public.p2", "hold public.p2", "drop public.p2 1"]
    assert [c for c in archive.calls if c.startswith("write 0")] == [
        f"write {name(1, 2)}", f"write {name(3, 3)}", f"write {name(4, 5)}",
        f"write {name(6, 7)}"]
    assert [r.key for r in partitions.catalog] == [
        f"export_logs/{name(1, 2)}", f"export_logs/{name(3, 3)}", f"export_logs/{name(4, 5)}"]
    dropped = [e for e in events(out) if e["type"] == "export_log_partition_dropped"]
    assert [(e["partition"], e["rows"], e["archived"], e["archive_objects"])
            for e in dropped] == [("public.p1", 3, True, 2), ("public.p2", 2, True, 1)]
    assert result.fields["eligible_count"] == 7
    assert (result.fields["deleted_count"], result.fields["archived_count"],
            result.fields["archive_objects"], result.fields["partitions"]) == (
        7, 7, 4, ["public.p1", "public.p2"])


def test_a_partition_left_detached_keeps_its_run_id_and_object_size() -> None:
    left = Partition("public.p1", 3, None, detached=True, run_id="killed", batch_size=1,
                     archived=True)
    partitions = FakePartitions([left], {"public.p1": [1, 2, 3]}, FakeLogs(old=[]))
    archive = FakeArchive()
    archive.objects[name(1, 1, "killed")] = b'{"id": 1}\n'  # written before the kill
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(partitions.table, archive,
                                                   partitions=partitions), params(batch_size=5))

    assert result.exit_code == ExitCode.OK
    assert partitions.calls == ["hold public.p1", "drop public.p1 3"]
    assert sorted(k for k in archive.objects if k.endswith(".gz")) == [
        name(1, 1, "killed"), name(2, 2, "killed"), name(3, 3, "killed")]
    assert result.fields["eligible_count"] == 3


def test_without_archive_a_partition_detached_for_the_archive_is_left_alone() -> None:
    left = Partition("public.p1", 3, None, detached=True, run_id="killed", batch_size=2,
                     archived=True)
    partitions = FakePartitions([left, Partition("public.p2", 2, OLD)],
                                {"public.p1": [1, 2, 3], "public.p2": [4, 5]}, FakeLogs(old=[]))
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(partitions.table, partitions=partitions),
                              params(archive=False))

    assert (result.exit_code, result.state) == (ExitCode.WARNING, "warning")
    assert partitions.calls == ["detach public.p2", "hold public.p2", "dropping public.p2",
                                "drop public.p2 0"]
    assert "public.p1" in partitions.rows
    skipped = [e for e in events(out) if e["type"] == "export_log_partition_skipped"]
    assert [(e["partition"], e["rows"]) for e in skipped] == [("public.p1", 3)]
    assert (result.fields["deleted_count"], result.fields["skipped_count"]) == (2, 3)


def test_a_stop_while_archiving_a_partition_drops_nothing_and_starts_no_batch() -> None:
    logs, archive = FakeLogs(old=[6, 7]), FakeArchive()
    partitions = two_partitions(logs)
    ctx, _ = make_ctx()
    seen: list[int] = []

    def stop_on_second_batch() -> None:
        seen.append(1)
        if len(seen) == 2:
            ctx.runtime.stop.cooperative = True
            ctx.runtime.stop.request(ExitCode.SIGTERM)

    partitions.on_batch = stop_on_second_batch

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive, partitions=partitions),
                              params(batch_size=2))

    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGTERM)
    assert partitions.calls == ["detach public.p1", "hold public.p1"]
    assert set(partitions.rows) == {"public.p1", "public.p2"}
    assert partitions.catalog == []
    assert sorted(logs.rows) == [4, 5, 6, 7]  # no batch started after the stop
    assert result.fields["deleted_count"] == 0


def test_a_dry_run_names_the_partitions_and_touches_none() -> None:
    logs = FakeLogs(old=[6])
    partitions = two_partitions(logs)
    ctx, _ = make_ctx(dry_run=True)

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, FakeArchive(), partitions=partitions),
                              params())

    assert partitions.calls == []
    assert result.fields["partitions"] == ["public.p1", "public.p2"]
    assert "dropping the partition(s) public.p1, public.p2 whole" in result.message
    assert result.fields["deleted_count"] == 6


def test_the_guard_weighs_rows_left_detached_as_part_of_the_table() -> None:
    # 1,000 rows in the table (600 past the cutoff) and 400 left detached: deleting 1,000
    # of 1,400 is within 0.9 of the table; weighed against the 1,000 attached it was not.
    table = FakeLogs(old=range(1000, 1600), new=range(2000, 2400))
    left = Partition("public.p1", 400, OLD, detached=True, run_id="killed", batch_size=100,
                     archived=False)
    partitions = FakePartitions([left], {"public.p1": list(range(1, 401))}, table)
    guard = DeletionGuard(GuardLimits(guard_min=0, max_delete_fraction=0.9))
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(
        table, partitions=partitions, guard=guard, table_rows=lambda: len(table.rows)),
        params(archive=False, batch_size=100))

    assert result.exit_code == ExitCode.OK, result.message
    assert result.fields["deleted_count"] == 1000


@pytest.mark.parametrize(("partition", "archive", "why"), [
    (Partition("public.p1", 3, NEW, detached=True, run_id="r", batch_size=2,
               archived=False), False, "not all older than this run's cutoff"),
    (Partition("public.p1", 3, OLD, detached=True, run_id="r", batch_size=2,
               archived=True, archive_uri="file:///elsewhere"), True,
     "being archived to file:///elsewhere"),
    (Partition("public.p1", 3, OLD, pending=True, run_id="r", batch_size=2,
               archived=True, archive_uri="file:///archive"), False,
     "detached to be archived and this run does not archive"),
])
def test_a_partition_left_detached_is_only_finished_as_it_was_meant(
    partition: Partition, archive: bool, why: str
) -> None:
    partitions = FakePartitions([partition], {"public.p1": [1, 2, 3]}, FakeLogs(old=[]))
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(
        partitions.table, FakeArchive() if archive else None, partitions=partitions),
        params(archive=archive))

    assert (result.exit_code, result.fields["deleted_count"]) == (ExitCode.WARNING, 0)
    assert partitions.calls == [] and "public.p1" in partitions.rows
    skipped = [e for e in events(out) if e["type"] == "export_log_partition_skipped"]
    assert len(skipped) == 1 and why in str(skipped[0]["reason"])
    dry, _ = make_ctx(dry_run=True)
    planned = logs_cleanup.run(dry, LogCleanupPorts(
        partitions.table, FakeArchive() if archive else None, partitions=partitions),
        params(archive=archive))
    assert planned.fields["partitions"] == []


def test_with_drop_partitions_off_a_partition_left_detached_is_reported_not_dropped() -> None:
    left = Partition("public.p1", 3, OLD, detached=True, run_id="r", batch_size=2,
                     archived=False)
    partitions = FakePartitions([left], {"public.p1": [1, 2, 3]}, FakeLogs(old=[7]))
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(partitions.table, partitions=partitions),
                              params(archive=False, drop_partitions=False))

    assert result.exit_code == ExitCode.WARNING
    assert result.fields["deleted_count"] == 1  # the table's own old row, in a batch
    skipped = [e for e in events(out) if e["type"] == "export_log_partition_skipped"]
    assert [e["reason"] for e in skipped] == ["[logs] drop_partitions is false"]


def test_without_archive_the_batches_run_while_the_partitions_are_dropped() -> None:
    logs = FakeLogs(old=[6, 7], new=[8])
    partitions = two_partitions(logs)
    logs.calls = partitions.calls  # one log of both, to see the order
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, partitions=partitions),
                              params(archive=False, batch_size=2))

    assert result.exit_code == ExitCode.OK
    assert [c for c in partitions.calls if c != "count"] == [
        "detach public.p1", "hold public.p1", "dropping public.p1",
        "detach public.p2", "hold public.p2", "dropping public.p2",
        "delete 6-7", "drop public.p1 0", "drop public.p2 0"]
    dropped = [e for e in events(out) if e["type"] == "export_log_partition_dropped"]
    assert [(e["partition"], e["rows"], e["archived"]) for e in dropped] == [
        ("public.p1", 3, False), ("public.p2", 2, False)]
    assert (result.fields["deleted_count"], result.fields["partitions"]) == (
        7, ["public.p1", "public.p2"])
    assert sorted(logs.rows) == [8]


def test_a_partition_being_dropped_is_finished_and_reported_when_the_batches_fail() -> None:
    class FailingLogs(FakeLogs):
        def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
            raise RuntimeError("database gone")
            yield 0

    logs = FailingLogs(old=[6])
    partitions = two_partitions(logs)
    ctx, out = make_ctx()

    with pytest.raises(RuntimeError, match="database gone"):
        logs_cleanup.run(ctx, LogCleanupPorts(logs, partitions=partitions),
                         params(archive=False))

    assert partitions.calls[-2:] == ["drop public.p1 0", "drop public.p2 0"]
    dropped = [e for e in events(out) if e["type"] == "export_log_partition_dropped"]
    assert [(e["partition"], e["rows"]) for e in dropped] == [("public.p1", 3),
                                                               ("public.p2", 2)]
