"""``logs.cleanup --archive`` through held deletes (PostgreSQL's path), against in-memory
fakes: each batch commits only after its object is verified, two batches are in flight
at once and the marker names both, a failure rolls its batch back, a stop starts no new
batch, and a rerun settles both objects a killed run left."""

from __future__ import annotations

import json
import threading

import pytest
from log_fakes import (
    FakeArchive,
    FakeHeldLogs,
    FakeLogs,
    events,
    lines,
    make_ctx,
    name,
    objects_rows,
    params,
)

from opsctl.domain.archive_names import MARKER_NAME
from opsctl.errors import ArchiveUnavailable
from opsctl.exit_codes import ExitCode
from opsctl.jobs import logs_cleanup
from opsctl.jobs.logs_cleanup import LogCleanupPorts
from opsctl.ports import LogBatch


def ports(logs: FakeLogs, archive: FakeArchive, held: FakeHeldLogs) -> LogCleanupPorts:
    return LogCleanupPorts(logs, archive, held=held)


def test_each_batch_commits_only_after_its_object_is_verified() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 5, 8], new=[9, 10]), FakeArchive()
    held = FakeHeldLogs(logs)
    checked: list[int] = []

    def verified_first(batch: LogBatch) -> None:
        object_name = name(batch.first_id, batch.last_id)
        assert f"verify {object_name}" in archive.calls
        assert objects_rows(archive)[object_name] == [
            i for i in (1, 2, 3, 5, 8) if batch.first_id <= i <= batch.last_id]
        checked.append(batch.first_id)

    held.before_commit = verified_first
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, ports(logs, archive, held), params())

    assert sorted(checked) == [1, 3, 8]
    assert sorted(logs.rows) == [9, 10]
    assert objects_rows(archive) == {name(1, 2): [1, 2], name(3, 5): [3, 5], name(8, 8): [8]}
    assert sorted((r.first_id, r.last_id, r.rows) for r in logs.catalog) == [
        (1, 2, 2), (3, 5, 2), (8, 8, 1)]
    assert not [c for c in logs.calls if c.startswith(("read", "delete", "release"))]
    assert (result.state, result.exit_code) == ("completed", ExitCode.OK)
    f = result.fields
    assert (f["eligible_count"], f["archived_count"], f["deleted_count"], f["skipped_count"],
            f["archive_objects"]) == (5, 5, 5, 0, 3)
    written = [e for e in events(out) if e["type"] == "export_log_archive_written"]
    assert [(e["first_id"], e["last_id"], e["rows"]) for e in written] == [
        (1, 2, 2), (3, 5, 2), (8, 8, 1)]  # in id order, whichever lane finished first
    assert MARKER_NAME not in archive.objects


def test_two_batches_are_in_flight_at_once_and_the_marker_names_both() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4]), FakeArchive()
    held = FakeHeldLogs(logs)
    both_published = threading.Barrier(2, timeout=10)
    held.before_commit = lambda batch: both_published.wait()
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, ports(logs, archive, held), params())

    assert result.fields["deleted_count"] == 4
    named = [json.loads(marker) for marker in archive.markers]
    assert named[0]["object"] in (name(1, 2), name(3, 4))  # one object: the old shape
    assert named[1]["objects"] and sorted(o["object"] for o in named[1]["objects"]) == [
        name(1, 2), name(3, 4)]
    assert {(o["first_id"], o["last_id"], o["rows"]) for o in named[1]["objects"]} == {
        (1, 2, 2), (3, 4, 2)}
    assert named[1]["run_id"] == "run-1" and named[1]["cutoff"] == "2026-10-24T10:00:00.000Z"


def test_a_failed_verification_rolls_its_batch_back_and_names_its_object() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5, 6]), FakeArchive(fail_verify=name(3, 4))
    held = FakeHeldLogs(logs)
    ctx, _ = make_ctx()

    with pytest.raises(ArchiveUnavailable, match="failed verification"):
        logs_cleanup.run(ctx, ports(logs, archive, held), params())

    assert {3, 4} <= set(logs.rows)
    assert "release 3-4" in logs.calls and "commit 3-4" not in logs.calls
    assert held.held == set()  # nothing left open
    for record in logs.catalog:  # whatever committed is gone and catalogued
        assert not set(range(record.first_id, record.last_id + 1)) & set(logs.rows)
    marker = json.loads(archive.objects[MARKER_NAME])
    entries = marker.get("objects", [marker])
    assert name(3, 4) in [entry["object"] for entry in entries]


def test_a_stop_request_finishes_the_batches_in_flight_and_starts_no_other() -> None:
    logs, archive = FakeLogs(old=list(range(1, 21))), FakeArchive()
    held = FakeHeldLogs(logs)
    ctx, _ = make_ctx()

    def stop(batch: LogBatch) -> None:
        ctx.runtime.stop.cooperative = True
        ctx.runtime.stop.request(ExitCode.SIGTERM)

    held.before_commit = stop
    result = logs_cleanup.run(ctx, ports(logs, archive, held), params())

    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGTERM)
    taken = [c for c in logs.calls if c.startswith("take")]
    committed = [c for c in logs.calls if c.startswith("commit")]
    # The batches in flight when the stop came (two lanes) were finished; no other began.
    assert 1 <= len(committed) == len(taken) <= 2
    f = result.fields
    assert f["deleted_count"] == f["archived_count"] == 2 * len(committed)
    assert f["skipped_count"] == 20 - f["deleted_count"] == len(logs.rows)
    assert MARKER_NAME not in archive.objects


def test_a_rerun_settles_both_objects_a_killed_run_left() -> None:
    # A killed run published 1-2 and 3-4 and died before either delete committed; since,
    # row 4 changed: 1-2 is finished as archived, 3-4 removed and archived again.
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5]), FakeArchive()
    first, second = name(1, 2, "killed"), name(3, 4, "killed")
    archive.objects[first], archive.objects[second] = lines(1, 2), lines(3, 4)
    archive.objects[MARKER_NAME] = json.dumps({"objects": [
        {"object": first, "first_id": 1, "last_id": 2, "rows": 2},
        {"object": second, "first_id": 3, "last_id": 4, "rows": 2}],
        "cutoff": "2026-10-24T10:00:00.000Z", "run_id": "killed"}).encode()
    logs.changed = {4}
    held = FakeHeldLogs(logs)
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, ports(logs, archive, held), params())

    assert logs.rows == {}
    assert objects_rows(archive) == {first: [1, 2], name(3, 4): [3, 4], name(5, 5): [5]}
    types = [e["type"] for e in events(out)]
    assert (types.count("export_log_archive_recovered"),
            types.count("export_log_archive_discarded")) == (1, 1)
    f = result.fields
    assert (f["deleted_count"], f["recovered_count"], f["archived_count"]) == (5, 2, 3)
    assert MARKER_NAME not in archive.objects


def test_a_batch_pause_runs_one_batch_at_a_time_with_a_wait_between() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5]), FakeArchive()
    held = FakeHeldLogs(logs)
    ctx, _ = make_ctx()
    waits: list[float] = []
    ctx.runtime.stop.wait = lambda seconds: waits.append(seconds) or False  # type: ignore[method-assign]

    result = logs_cleanup.run(ctx, ports(logs, archive, held), params(batch_pause_ms=250))

    assert result.fields["deleted_count"] == 5
    assert waits == [0.25, 0.25]
    steps = [c for c in logs.calls if c.startswith(("take", "commit"))]
    assert steps == ["take 1-2", "commit 1-2", "take 3-4", "commit 3-4", "take 5-5",
                     "commit 5-5"]  # never two batches at once
