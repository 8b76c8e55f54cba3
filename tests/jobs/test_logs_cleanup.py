"""``logs.cleanup`` against in-memory fakes of its two ports: the order of archive, verify
and delete, the catalog, recovery after a killed run, changed batches read again, poison
rows, pauses, stop requests and dry run."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from log_fakes import (
    NOW,
    OLD,
    FakeArchive,
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
from opsctl.jobs.logs_cleanup import LogCleanupParams, LogCleanupPorts
from opsctl.ports import CatalogRecord, LogBatch, PoisonRow


def test_each_batch_is_written_and_verified_before_its_delete() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 5, 8], new=[9, 10]), FakeArchive()
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    first, second, third = name(1, 2), name(3, 5), name(8, 8)
    assert objects_rows(archive) == {first: [1, 2], second: [3, 5], third: [8]}
    assert archive.calls == [
        "read marker",
        "write marker", f"write {first}", f"verify {first}",
        "write marker", f"write {second}", f"verify {second}",
        "write marker", f"write {third}", f"verify {third}",
        "remove marker",
    ]
    # the next batch is read, and its object staged, while the current one is deleted
    assert logs.calls == ["count", "read 1-2", "read 3-5", "delete 1-2", "read 8-8",
                          "delete 3-5", "delete 8-8"]
    assert sorted(logs.rows) == [9, 10]
    assert (result.state, result.exit_code) == ("completed", ExitCode.OK)
    f = result.fields
    assert (f["eligible_count"], f["archived_count"], f["deleted_count"], f["skipped_count"],
            f["archive_objects"], f["recovered_count"]) == (5, 5, 5, 0, 3, 0)
    assert f["cutoff"] == "2026-10-24T10:00:00.000Z"
    assert f["dry_run"] is False and f["retention_days"] == 30
    written = [e for e in events(out) if e["type"] == "export_log_archive_written"]
    assert [(e["uri"], e["rows"], e["first_id"], e["last_id"]) for e in written] == [
        (f"file:///archive/export_logs/{first}", 2, 1, 2),
        (f"file:///archive/export_logs/{second}", 2, 3, 5),
        (f"file:///archive/export_logs/{third}", 1, 8, 8),
    ]
    assert all(e["bytes"] and e["sha256"] == "sha" for e in written)


def test_each_deleted_batch_is_catalogued_with_its_delete() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 5, 8]), FakeArchive()
    ctx, _ = make_ctx()

    logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert [(r.uri, r.key, r.source_table, r.first_id, r.last_id, r.rows, r.run_id)
            for r in logs.catalog] == [
        ("file:///archive", f"export_logs/{name(1, 2)}", "export_logs", 1, 2, 2, "run-1"),
        ("file:///archive", f"export_logs/{name(3, 5)}", "export_logs", 3, 5, 2, "run-1"),
        ("file:///archive", f"export_logs/{name(8, 8)}", "export_logs", 8, 8, 1, "run-1"),
    ]
    assert {(r.sha256, r.created_at, r.min_created_at, r.max_created_at)
            for r in logs.catalog} == {("sha", NOW, OLD, OLD)}


def test_the_marker_names_the_object_about_to_be_written() -> None:
    logs, archive = FakeLogs(old=[4, 7]), FakeArchive(fail_verify=name(4, 7))
    ctx, _ = make_ctx()

    with pytest.raises(ArchiveUnavailable):
        logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params(batch_size=10))

    marker = json.loads(archive.objects[MARKER_NAME])
    assert marker == {"object": name(4, 7), "first_id": 4, "last_id": 7, "rows": 2,
                      "cutoff": "2026-10-24T10:00:00.000Z", "run_id": "run-1"}
    assert MARKER_NAME == ".inflight.json" and not MARKER_NAME.endswith(".gz")


def test_a_failed_verification_deletes_nothing() -> None:
    logs = FakeLogs(old=[1, 2, 3, 4])
    archive = FakeArchive(fail_verify=name(3, 4))
    ctx, _ = make_ctx()

    with pytest.raises(ArchiveUnavailable, match="failed verification"):
        logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert sorted(logs.rows) == [3, 4]  # the first batch was verified and deleted
    assert "delete 3-4" not in logs.calls
    assert [r.first_id for r in logs.catalog] == [1]


def test_an_existing_object_with_other_content_stops_the_run_before_its_delete() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4]), FakeArchive()
    archive.objects[name(3, 4)] = b"someone else's rows\n"
    ctx, _ = make_ctx()

    with pytest.raises(ArchiveUnavailable, match="other content"):
        logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert sorted(logs.rows) == [3, 4]
    assert archive.objects[name(3, 4)] == b"someone else's rows\n"


def test_an_unwritable_archive_deletes_nothing() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3]), FakeArchive(fail_write=MARKER_NAME)
    ctx, _ = make_ctx()

    with pytest.raises(ArchiveUnavailable):
        logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert sorted(logs.rows) == [1, 2, 3]
    assert not [c for c in logs.calls if c.startswith("delete")]


def test_a_batch_that_changed_is_read_again_and_archived_in_its_new_version() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5]), FakeArchive()
    logs.refuse_delete, logs.refusals = {3}, 2  # changes once, then holds still
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    # Each next batch is read (and its object staged) before the current one's delete;
    # the one staged behind the changed batch is discarded and read again.
    assert logs.calls == ["count", "read 1-2", "read 3-4", "delete 1-2", "read 5-5",
                          "delete 3-4", "read 3-4", "read 5-5", "delete 3-4", "delete 5-5"]
    assert (archive.staged, archive.discarded) == (5, 1)
    assert logs.rows == {}
    assert objects_rows(archive) == {name(1, 2): [1, 2], name(3, 4): [3, 4], name(5, 5): [5]}
    assert archive.calls.count(f"remove {name(3, 4)}") == 1
    assert (result.state, result.exit_code) == ("completed", ExitCode.OK)
    assert (result.fields["deleted_count"], result.fields["archive_objects"]) == (5, 3)
    assert [e for e in events(out) if e["type"] == "export_log_batch_skipped"] == []


def test_a_batch_that_keeps_changing_is_left_in_place_and_its_object_removed() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5]), FakeArchive()
    logs.refuse_delete = {3}
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert logs.calls.count("delete 3-4") == logs_cleanup.MAX_READS
    assert sorted(logs.rows) == [3, 4]
    assert set(objects_rows(archive)) == {name(1, 2), name(5, 5)}
    assert (result.state, result.exit_code) == ("warning", ExitCode.WARNING)
    f = result.fields
    assert (f["archived_count"], f["deleted_count"], f["skipped_count"],
            f["archive_objects"]) == (3, 3, 2, 2)
    skipped = [e for e in events(out) if e["type"] == "export_log_batch_skipped"]
    assert [(e["first_id"], e["last_id"], e["rows"], e["level"]) for e in skipped] == [
        (3, 4, 2, "warning")]


def orphan_of_a_killed_run(archive: FakeArchive, *ids: int) -> str:
    orphan = name(ids[0], ids[-1], "killed-run")
    archive.objects[orphan] = lines(*ids)
    archive.objects[MARKER_NAME] = json.dumps(
        {"object": orphan, "first_id": ids[0], "last_id": ids[-1], "rows": len(ids)}).encode()
    return orphan


def test_a_rerun_first_finishes_the_batch_a_killed_run_archived() -> None:
    # A killed run wrote object 1-3 (rows 1, 2, 3) and its marker, then died before the
    # delete. This run uses another batch size: without recovery it would archive 1-2.
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5]), FakeArchive()
    orphan = orphan_of_a_killed_run(archive, 1, 2, 3)
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params(batch_size=2))

    assert logs.calls[:2] == ["count", "settle [1, 2, 3]"]
    assert objects_rows(archive) == {orphan: [1, 2, 3], name(4, 5): [4, 5]}
    assert logs.rows == {}
    assert [(r.key, r.rows, r.run_id) for r in logs.catalog] == [
        (f"export_logs/{orphan}", 3, "run-1"), (f"export_logs/{name(4, 5)}", 2, "run-1")]
    f = result.fields
    assert (f["eligible_count"], f["deleted_count"], f["recovered_count"], f["archived_count"],
            f["archive_objects"], f["skipped_count"]) == (5, 5, 3, 2, 1, 0)
    recovered = [e for e in events(out) if e["type"] == "export_log_archive_recovered"]
    assert [(e["uri"], e["rows"], e["deleted_count"]) for e in recovered] == [
        (f"file:///archive/export_logs/{orphan}", 3, 3)]
    assert MARKER_NAME not in archive.objects


def test_recovery_removes_an_object_whose_rows_changed_and_archives_them_again() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4]), FakeArchive()
    orphan = orphan_of_a_killed_run(archive, 1, 2, 3)
    logs.changed = {2}
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params(batch_size=10))

    assert objects_rows(archive) == {name(1, 4): [1, 2, 3, 4]}  # the orphan is gone
    assert [r.key for r in logs.catalog] == [f"export_logs/{name(1, 4)}"]
    discarded = [e for e in events(out) if e["type"] == "export_log_archive_discarded"]
    assert [(e["uri"], e["changed_ids"], e["level"]) for e in discarded] == [
        (f"file:///archive/export_logs/{orphan}", [2], "warning")]
    assert (result.fields["recovered_count"], result.fields["deleted_count"]) == (0, 4)


def test_recovery_never_deletes_a_row_that_became_newer_than_the_cutoff() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3]), FakeArchive()
    orphan_of_a_killed_run(archive, 1, 2, 3)
    logs.rows[2] = NOW  # re-dated while the run was dead
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params(batch_size=10))

    assert sorted(logs.rows) == [2]
    assert objects_rows(archive) == {name(1, 3): [1, 3]}
    assert result.fields["recovered_count"] == 0


def test_recovery_of_an_object_already_catalogued_deletes_nothing_more() -> None:
    logs, archive = FakeLogs(old=[4]), FakeArchive()
    orphan = orphan_of_a_killed_run(archive, 1, 2, 3)
    logs.catalog.append(CatalogRecord(
        "file:///archive", f"export_logs/{orphan}", "export_logs", 1, 3, 3, 1, "sha", None,
        None, "killed-run", NOW))
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert not [c for c in logs.calls if c.startswith("settle")]
    assert orphan in archive.objects and MARKER_NAME not in archive.objects
    assert result.fields["recovered_count"] == 0


def test_a_marker_whose_object_was_never_written_is_dropped() -> None:
    logs, archive = FakeLogs(old=[1, 2]), FakeArchive()
    archive.objects[MARKER_NAME] = json.dumps(
        {"object": name(1, 2, "killed"), "first_id": 1, "last_id": 2, "rows": 2}).encode()
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params(batch_size=5))

    assert not [c for c in logs.calls if c.startswith("settle")]
    assert result.fields["recovered_count"] == 0
    assert result.fields["deleted_count"] == 2


def test_an_object_that_does_not_match_its_marker_stops_the_run() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3]), FakeArchive()
    orphan = orphan_of_a_killed_run(archive, 1, 2, 3)
    archive.objects[orphan] = lines(1)
    ctx, _ = make_ctx()

    with pytest.raises(ArchiveUnavailable, match="does not hold the 3 rows 1-3"):
        logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert sorted(logs.rows) == [1, 2, 3]


def test_poison_rows_are_reported_left_alone_and_exit_1() -> None:
    logs, archive = FakeLogs(old=[1, 2]), FakeArchive()
    logs.poison = [PoisonRow(7, "1793000000", "created_at is integer, not a timestamp")]
    ctx, out = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert (result.state, result.exit_code) == ("warning", ExitCode.WARNING)
    assert (result.fields["deleted_count"], result.fields["quarantined_count"]) == (2, 1)
    quarantined = [e for e in events(out) if e["type"] == "export_log_row_quarantined"]
    assert [(e["id"], e["value"], e["level"]) for e in quarantined] == [
        (7, "1793000000", "warning")]


def test_batch_pause_waits_between_batches_and_a_stop_ends_the_wait() -> None:
    logs = FakeLogs(old=[1, 2, 3, 4, 5])
    ctx, _ = make_ctx()
    waits: list[float] = []
    ctx.runtime.stop.wait = lambda seconds: waits.append(seconds) or False  # type: ignore[method-assign]

    logs_cleanup.run(ctx, LogCleanupPorts(logs, None),
                     params(archive=False, batch_pause_ms=250))

    assert waits == [0.25, 0.25, 0.25]
    assert ctx.runtime.stop.wait is not None


def test_a_stop_request_finishes_the_current_batch_and_starts_no_other() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5, 6]), FakeArchive()
    ctx, _ = make_ctx()

    def stop_after_first_delete(batch: LogBatch, cutoff: datetime,
                                record: CatalogRecord) -> bool:
        ctx.runtime.stop.cooperative = True
        ctx.runtime.stop.request(ExitCode.SIGTERM)
        for i in range(batch.first_id, batch.last_id + 1):
            logs.rows.pop(i, None)
        return True

    logs.delete_batch = stop_after_first_delete  # type: ignore[method-assign]
    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGTERM)
    assert sorted(logs.rows) == [3, 4, 5, 6]
    assert list(objects_rows(archive)) == [name(1, 2)]
    f = result.fields
    assert (f["deleted_count"], f["archived_count"], f["skipped_count"]) == (2, 2, 4)
    assert MARKER_NAME not in archive.objects  # the last batch was settled


def test_without_archive_rows_are_deleted_batch_after_batch() -> None:
    logs = FakeLogs(old=[1, 2, 3, 4, 5], new=[6])
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, None), params(archive=False))

    assert logs.calls == ["count", "delete 1-2", "delete 3-4", "delete 5-5"]
    assert sorted(logs.rows) == [6]
    f = result.fields
    assert (f["eligible_count"], f["deleted_count"], f["archived_count"],
            f["archive_objects"], f["archive_uri"]) == (5, 5, 0, 0, None)


def test_without_archive_a_stop_request_ends_the_run_after_the_batch() -> None:
    logs = FakeLogs(old=[1, 2, 3, 4, 5])
    ctx, _ = make_ctx()
    ctx.runtime.stop.cooperative = True
    ctx.runtime.stop.request(ExitCode.SIGINT)

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, None), params(archive=False))

    assert logs.calls == ["count", "delete 1-2"]
    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGINT)
    assert (result.fields["deleted_count"], result.fields["skipped_count"]) == (2, 3)


def test_dry_run_counts_what_would_go_and_writes_nothing() -> None:
    logs, archive = FakeLogs(old=[1, 2, 3, 4, 5], new=[6]), FakeArchive()
    ctx, _ = make_ctx(dry_run=True)

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, archive), params())

    assert logs.calls == ["count"]
    assert archive.calls == ["read marker"]
    assert (result.state, result.exit_code) == ("dry_run", ExitCode.OK)
    f = result.fields
    assert (f["dry_run"], f["eligible_count"], f["archived_count"], f["deleted_count"],
            f["archive_objects"], f["skipped_count"]) == (True, 5, 5, 5, 3, 0)


def test_retention_zero_makes_everything_before_now_eligible() -> None:
    logs = FakeLogs(old=[1], new=[2])
    ctx, _ = make_ctx()

    result = logs_cleanup.run(ctx, LogCleanupPorts(logs, None),
                              LogCleanupParams(retention_days=0, batch_size=10, archive=False))

    assert result.fields["cutoff"] == "2026-11-23T10:00:00.000Z"
    assert result.fields["deleted_count"] == 2


@pytest.mark.parametrize(("days", "size"), [(-1, 10), (30, 0)])
def test_params_refuse_nonsense(days: int, size: int) -> None:
    with pytest.raises(ValueError, match="must be >="):
        LogCleanupParams(retention_days=days, batch_size=size, archive=False)
