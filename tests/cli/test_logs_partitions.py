"""``logs cleanup`` on a real partitioned table (PostgreSQL, RANGE on created_at, a DEFAULT
partition too): partitions wholly older than the cutoff are archived, detached and dropped
whole; the rest goes in batches; a run stopped between the steps is finished by the next
one without writing any object twice."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import (
    PARTITIONED_DDL,
    Cli,
    execute_sql,
    export_row,
    insert_exports,
    isolated_env,
)

from opsctl.adapters.db.database import Database, RunConnection
from opsctl.adapters.db.locks import advisory_lock_ids, job_lock
from opsctl.adapters.db.partitions import PartitionsRepository
from opsctl.errors import OpsctlError
from opsctl.settings.data import SourceSettings

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
# name: (from, to), in days before now; the retention is 30 days.
RANGES = {"p_old": (90, 60), "p_mid": (60, 40), "p_now": (40, -30)}
# Rows per place: two whole partitions, the partition holding the cutoff (old and new
# rows), and the DEFAULT partition (never taken whole).
ROWS = {"p_old": (10, 80), "p_mid": (7, 50), "p_now_old": (5, 35), "p_now_new": (6, 1),
        "default": (4, 200)}
OLD_ROWS = 10 + 7 + 5 + 4


def bound(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat()


@pytest.fixture
def table(pg_url: str) -> str:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(PARTITIONED_DDL))
            for name, (start, end) in RANGES.items():
                conn.execute(text(f"CREATE TABLE {name} PARTITION OF export_logs FOR VALUES "
                                  f"FROM ('{bound(start)}') TO ('{bound(end)}')"))
            conn.execute(text("CREATE TABLE p_default PARTITION OF export_logs DEFAULT"))
    finally:
        engine.dispose()
    rows = []
    for place, (count, days) in ROWS.items():
        rows += [export_row(created_at=NOW - timedelta(days=days, minutes=i),
                            error_message=f"{place} #{i} [/x] \\ \"q\"")
                 for i in range(count)]
    insert_exports(pg_url, rows)
    return pg_url


@pytest.fixture
def cli(home: Path, table: str) -> Cli:
    return Cli(isolated_env(home, table))


def scalar(url: str, sql: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def tables_left(url: str) -> list[str]:
    return sorted(scalar(url, "SELECT array_agg(relname::text) FROM pg_class WHERE relname "
                              "LIKE 'p\\_%' AND relkind = 'r'") or [])


def archived_ids(directory: Path) -> Counter[int]:
    ids: Counter[int] = Counter()
    for path in directory.glob("*.jsonl.gz"):
        ids.update(json.loads(line)["id"] for line in gzip.decompress(
            path.read_bytes()).splitlines())
    return ids


def test_whole_partitions_are_dropped_and_the_rest_deleted_in_batches(
    cli: Cli, table: str
) -> None:
    result = cli("logs", "cleanup", "--batch-size", "3")

    assert result.exit_code == 0, result.stdout
    dropped = result.of_type("export_log_partition_dropped")
    assert [(e["partition"], e["rows"], e["archived"]) for e in dropped] == [
        ("public.p_old", 10, False), ("public.p_mid", 7, False)]
    summary = result.one("export_log_cleanup_complete")
    assert (summary["eligible_count"], summary["deleted_count"], summary["skipped_count"]) == (
        OLD_ROWS, OLD_ROWS, 0)
    assert summary["partitions"] == ["public.p_old", "public.p_mid"]
    assert tables_left(table) == ["p_default", "p_now"]
    assert scalar(table, "SELECT count(*) FROM export_logs") == 6
    assert scalar(table, "SELECT count(*) FROM export_logs WHERE created_at < now() - "
                         "interval '30 days'") == 0


def test_with_archive_every_row_is_in_exactly_one_catalogued_verified_object(
    cli: Cli, table: str, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    ids_before = {int(i) for i in scalar(table, "SELECT array_agg(id) FROM export_logs "
                                                "WHERE created_at < now() - interval '30 days'")}

    result = cli("logs", "cleanup", "--archive-uri", archive.as_uri(), "--batch-size", "4")

    assert result.exit_code == 0, result.stdout
    dropped = result.of_type("export_log_partition_dropped")
    # p_old: 10 rows in objects of 4, 4, 2; p_mid: 7 rows in 4, 3.
    assert [(e["partition"], e["rows"], e["archived"], e["archive_objects"])
            for e in dropped] == [("public.p_old", 10, True, 3), ("public.p_mid", 7, True, 2)]
    summary = result.one("export_log_cleanup_complete")
    # the 9 other old rows: 4 + 4 + 1 in batches
    assert (summary["archived_count"], summary["deleted_count"], summary["archive_objects"]) == (
        OLD_ROWS, OLD_ROWS, 8)
    ids = archived_ids(archive / "export_logs")
    assert set(ids) == ids_before and set(ids.values()) == {1}
    assert scalar(table, "SELECT count(*) FROM opsctl_archive_objects") == 8
    assert scalar(table, "SELECT sum(rows) FROM opsctl_archive_objects") == OLD_ROWS
    verified = cli("logs", "verify", "--archive-uri", archive.as_uri())
    assert verified.exit_code == 0, verified.stdout
    # Every column came back equal: restore into an empty copy and compare.
    restored = cli("logs", "restore", "--archive-uri", archive.as_uri())
    assert restored.one("export_log_restore_complete")["rows_restored"] == OLD_ROWS
    assert scalar(table, "SELECT count(*) FROM export_logs WHERE error_message LIKE "
                         "'p\\_old #% [/x] \\\\ \"q\"'") == 10


def test_a_dry_run_names_the_partitions_and_changes_nothing(cli: Cli, table: str) -> None:
    result = cli("logs", "cleanup", "--dry-run")

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_cleanup_complete")
    assert summary["partitions"] == ["public.p_old", "public.p_mid"]
    assert summary["deleted_count"] == OLD_ROWS
    assert "public.p_old, public.p_mid" in summary["message"]
    assert result.of_type("export_log_partition_dropped") == []
    assert tables_left(table) == ["p_default", "p_mid", "p_now", "p_old"]
    assert scalar(table, "SELECT count(*) FROM export_logs") == OLD_ROWS + 6
    assert scalar(table, "SELECT count(*) FROM pg_description WHERE description LIKE "
                         "'opsctl%'") == 0


def test_drop_partitions_false_deletes_rows_and_keeps_partitions(cli: Cli, table: str) -> None:
    result = cli("logs", "cleanup", env={"OPSCTL_LOGS__DROP_PARTITIONS": "false"})

    assert result.exit_code == 0, result.stdout
    assert result.of_type("export_log_partition_dropped") == []
    assert result.one("export_log_cleanup_complete")["deleted_count"] == OLD_ROWS
    assert tables_left(table) == ["p_default", "p_mid", "p_now", "p_old"]
    assert scalar(table, "SELECT count(*) FROM export_logs") == 6


def test_the_guard_counts_partition_rows_and_drops_nothing(cli: Cli, table: str) -> None:
    result = cli("logs", "cleanup", "--max-delete", "20")

    assert result.exit_code == 2, result.stdout
    trip = result.one("deletion_guard_tripped")
    assert (trip["limit_kind"], trip["would_delete"], trip["limit"]) == (
        "max_delete", OLD_ROWS, 20)
    assert tables_left(table) == ["p_default", "p_mid", "p_now", "p_old"]


def detach_as_a_killed_run(url: str, partition: str, run_id: str, size: int,
                           archive_uri: str | None, retention_days: int = 30) -> None:
    """What a run killed after detaching a partition leaves: the partition noted and
    detached, nothing dropped."""
    repository = PartitionsRepository(Database(url), SourceSettings())
    try:
        plan = repository.plan(NOW - timedelta(days=retention_days))
        assert plan is not None
        taken = {p.name: p for p in plan.whole}
        repository.detach(taken[partition], run_id, size, archive_uri)
    finally:
        repository.close()
        repository.db.engine.dispose()


def test_a_partition_left_detached_is_finished_under_its_noted_names(
    cli: Cli, table: str, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    detach_as_a_killed_run(table, "public.p_old", "killed-run", 6, archive.as_uri())
    assert scalar(table, "SELECT count(*) FROM export_logs") == OLD_ROWS + 6 - 10
    # The killed run had written its first object (rows 1-6 of p_old) before it died.
    first = cli("logs", "cleanup", "--archive-uri", archive.as_uri(), "--dry-run")
    assert first.one("export_log_cleanup_complete")["eligible_count"] == OLD_ROWS
    ids = sorted(int(i) for i in scalar(table, "SELECT array_agg(id) FROM p_old"))
    name = f"{ids[0]:012d}-{ids[5]:012d}.killed-run.jsonl.gz"

    result = cli("logs", "cleanup", "--archive-uri", archive.as_uri(), "--batch-size", "4")

    assert result.exit_code == 0, result.stdout
    written = [Path(e["uri"]).name for e in result.of_type("export_log_archive_written")]
    assert written[:2] == [name, f"{ids[6]:012d}-{ids[9]:012d}.killed-run.jsonl.gz"]
    dropped = result.of_type("export_log_partition_dropped")
    assert [(e["partition"], e["rows"], e["archive_objects"]) for e in dropped] == [
        ("public.p_old", 10, 2), ("public.p_mid", 7, 2)]
    counts = archived_ids(archive / "export_logs")
    assert len(counts) == OLD_ROWS and set(counts.values()) == {1}
    assert tables_left(table) == ["p_default", "p_now"]
    assert cli("logs", "verify", "--archive-uri", archive.as_uri()).exit_code == 0


def test_an_object_a_killed_run_wrote_is_accepted_not_written_twice(
    cli: Cli, table: str, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    detach_as_a_killed_run(table, "public.p_old", "killed-run", 6, archive.as_uri())
    # A first run that archived p_old's first object, then was stopped: simulate with an
    # archive that fails after one object by making the second name a directory.
    ids = sorted(int(i) for i in scalar(table, "SELECT array_agg(id) FROM p_old"))
    target = archive / "export_logs"
    target.mkdir(parents=True)
    blocker = target / f"{ids[6]:012d}-{ids[9]:012d}.killed-run.jsonl.gz"
    blocker.mkdir()
    failed = cli("logs", "cleanup", "--archive-uri", archive.as_uri())
    assert failed.exit_code == 3, failed.stdout
    assert tables_left(table) == ["p_default", "p_mid", "p_now", "p_old"]
    assert len(list(target.glob("*.jsonl.gz"))) == 2  # one object, one blocker
    blocker.rmdir()

    result = cli("logs", "cleanup", "--archive-uri", archive.as_uri())

    assert result.exit_code == 0, result.stdout
    counts = archived_ids(target)
    assert len(counts) == OLD_ROWS and set(counts.values()) == {1}
    assert scalar(table, "SELECT count(*) FROM opsctl_archive_objects") == len(
        list(target.glob("*.jsonl.gz")))


def test_a_partition_detached_for_the_archive_is_not_dropped_without_one(
    cli: Cli, table: str
) -> None:
    detach_as_a_killed_run(table, "public.p_old", "killed-run", 6, "file:///elsewhere")

    result = cli("logs", "cleanup")

    assert result.exit_code == 1, result.stdout
    skipped = result.one("export_log_partition_skipped")
    assert (skipped["partition"], skipped["rows"]) == ("public.p_old", 10)
    assert [e["partition"] for e in result.of_type("export_log_partition_dropped")] == [
        "public.p_mid"]
    assert "p_old" in tables_left(table)
    assert scalar(table, "SELECT count(*) FROM p_old") == 10


def test_a_table_not_partitioned_on_created_at_goes_in_batches(
    pg_url: str, home: Path
) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(PARTITIONED_DDL.replace("RANGE (created_at)", "RANGE (id)")))
            conn.execute(text("CREATE TABLE p_ids PARTITION OF export_logs FOR VALUES "
                              "FROM (0) TO (1000)"))
    finally:
        engine.dispose()
    insert_exports(pg_url, [export_row(created_at=NOW - timedelta(days=d)) for d in (1, 50)])

    result = Cli(isolated_env(home, pg_url))("logs", "cleanup")

    assert result.exit_code == 0, result.stdout
    assert result.of_type("export_log_partition_dropped") == []
    assert result.one("export_log_cleanup_complete")["deleted_count"] == 1
    assert tables_left(pg_url) == ["p_ids"]


def comments(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {str(name): str(text_) for name, text_ in conn.execute(text(
                "SELECT c.relname, d.description FROM pg_description d JOIN pg_class c "
                "ON c.oid = d.objoid WHERE d.description LIKE 'opsctl%'"))}
    finally:
        engine.dispose()


def test_a_detach_that_fails_leaves_no_note_for_a_later_detach_to_be_mistaken_by(
    cli: Cli, table: str
) -> None:
    engine = create_engine(table)
    try:
        with engine.connect() as reader:  # the application, mid-transaction on the table
            reader.execute(text("SELECT count(*) FROM export_logs"))
            failed = cli("logs", "cleanup",
                         env={"OPSCTL_DATABASE__STATEMENT_TIMEOUT_S": "1"})
            reader.rollback()
    finally:
        engine.dispose()
    assert failed.exit_code == 3, failed.stdout
    assert comments(table) == {}
    # Someone detaches the partition to keep it; a run with a long retention leaves it.
    execute_sql(table, "ALTER TABLE export_logs DETACH PARTITION p_old")
    result = cli("logs", "cleanup", "--retention-days", "3650")
    assert result.exit_code == 0, result.stdout
    assert result.of_type("export_log_partition_dropped") == []
    assert scalar(table, "SELECT count(*) FROM p_old") == 10


def test_a_stale_note_on_an_attached_partition_is_cleared_by_the_next_run(
    cli: Cli, table: str
) -> None:
    oid = scalar(table, "SELECT 'export_logs'::regclass::oid")
    note = json.dumps({"parent_oid": oid, "run_id": "x", "batch_size": 5, "archive": False})
    execute_sql(table, f"COMMENT ON TABLE p_now IS 'opsctl logs.cleanup: {note}'")
    assert set(comments(table)) == {"p_now"}
    assert cli("logs", "cleanup", "--dry-run").exit_code == 0
    assert set(comments(table)) == {"p_now"}  # a dry run writes nothing

    assert cli("logs", "cleanup").exit_code == 0

    assert comments(table) == {}
    assert "p_now" in tables_left(table)


def test_a_partition_left_detached_within_this_runs_retention_is_left_alone(
    cli: Cli, table: str
) -> None:
    detach_as_a_killed_run(table, "public.p_old", "killed-run", 6, None)

    result = cli("logs", "cleanup", "--retention-days", "3650")

    assert result.exit_code == 1, result.stdout
    skipped = result.one("export_log_partition_skipped")
    assert skipped["partition"] == "public.p_old"
    assert "older than this run's cutoff" in skipped["reason"]
    assert result.one("export_log_cleanup_complete")["eligible_count"] == 0
    assert scalar(table, "SELECT count(*) FROM p_old") == 10


def test_dropping_refuses_a_partition_whose_objects_do_not_hold_all_its_rows(
    table: str,
) -> None:
    detach_as_a_killed_run(table, "public.p_old", "killed-run", 6, "file:///a")
    repository = PartitionsRepository(Database(table), SourceSettings())
    try:
        plan = repository.plan(NOW - timedelta(days=30))
        assert plan is not None
        left = next(p for p in plan.whole if p.name == "public.p_old")
        with repository.hold(left) as held, pytest.raises(OpsctlError, match="holds 10 rows"):
            held.drop([], archived=True)
    finally:
        repository.db.engine.dispose()
    assert scalar(table, "SELECT count(*) FROM p_old") == 10


def test_a_partition_whose_name_holds_a_dot_is_archived_and_dropped(
    cli: Cli, table: str, tmp_path: Path
) -> None:
    execute_sql(table, 'ALTER TABLE p_old RENAME TO "p.old ""Q"""')
    archive = tmp_path / "archive"

    result = cli("logs", "cleanup", "--archive-uri", archive.as_uri())

    assert result.exit_code == 0, result.stdout
    assert [e["partition"] for e in result.of_type("export_log_partition_dropped")] == [
        'public."p.old ""Q"""', "public.p_mid"]
    assert len(archived_ids(archive / "export_logs")) == OLD_ROWS
    assert cli("logs", "verify", "--archive-uri", archive.as_uri()).exit_code == 0


def test_a_login_that_does_not_own_the_partitions_deletes_their_rows_in_batches(
    home: Path, table: str
) -> None:
    role = f"opsctl_cleaner_{uuid.uuid4().hex[:8]}"
    assert Cli(isolated_env(home, table))("db", "init").exit_code == 0
    execute_sql(table, f"CREATE ROLE {role} LOGIN",
                f"GRANT USAGE ON SCHEMA public TO {role}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
                f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        url = make_url(table).set(username=role).render_as_string(hide_password=False)
        result = Cli(isolated_env(home, url))("logs", "cleanup")
    finally:
        execute_sql(table, f"DROP OWNED BY {role}", f"DROP ROLE {role}")

    assert result.exit_code == 0, result.stdout
    assert [e["partition"] for e in result.of_type("export_log_partition_in_batches")] == [
        "public.p_old", "public.p_mid"]
    assert result.of_type("export_log_partition_dropped") == []
    assert result.one("export_log_cleanup_complete")["deleted_count"] == OLD_ROWS
    assert tables_left(table) == ["p_default", "p_mid", "p_now", "p_old"]


def test_the_text_view_names_the_partitions_a_dry_run_would_drop(cli: Cli) -> None:
    result = cli("logs", "cleanup", "--dry-run", output="text")

    assert result.exit_code == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "partitions" in line)
    assert "would be dropped" in line and "public.p_old, public.p_mid" in line


def test_bounds_of_a_key_without_time_zone_are_read_in_utc_whatever_the_server_zone(
    pg_url: str, home: Path
) -> None:
    # A partition ending 5 hours after the cutoff (UTC) is not wholly past it; read in the
    # server's zone (UTC+9 here) its bound would seem 4 hours before the cutoff.
    cutoff = NOW - timedelta(days=1)

    def naive(moment: datetime) -> str:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat()

    database = make_url(pg_url).database
    execute_sql(pg_url, PARTITIONED_DDL.replace("created_at timestamptz", "created_at timestamp"),
                f"CREATE TABLE p_a PARTITION OF export_logs FOR VALUES FROM "
                f"('{naive(cutoff - timedelta(days=10))}') TO ('{naive(cutoff + timedelta(hours=5))}')",
                f"CREATE TABLE p_b PARTITION OF export_logs FOR VALUES FROM "
                f"('{naive(cutoff + timedelta(hours=5))}') TO (MAXVALUE)",
                f"ALTER DATABASE \"{database}\" SET timezone = 'Asia/Tokyo'")
    try:
        result = Cli(isolated_env(home, pg_url))("logs", "cleanup", "--dry-run",
                                                 "--retention-days", "1")
    finally:
        execute_sql(pg_url, f"ALTER DATABASE \"{database}\" RESET timezone")

    assert result.exit_code == 0, result.stdout
    assert result.one("export_log_cleanup_complete")["partitions"] == []


def test_a_row_written_to_a_partition_after_its_count_is_counted_by_its_drop(
    table: str
) -> None:
    """The plan's count is the guard's; the drop reports what it dropped, counted under
    the lock that keeps the detached table as it is until it is gone."""
    repository = PartitionsRepository(Database(table), SourceSettings())
    try:
        plan = repository.plan(NOW - timedelta(days=30))
        assert plan is not None
        old = {p.name: p for p in plan.whole}["public.p_old"]
        assert old.rows == 10
        insert_exports(table, [export_row(created_at=NOW - timedelta(days=80))])
        detached = repository.detach(old, "late-row", 5, None)
        with repository.hold(detached) as held:
            assert held.drop_meanwhile()() == 11
    finally:
        repository.close()
        repository.db.engine.dispose()
    assert tables_left(table) == ["p_default", "p_mid", "p_now"]


def test_the_job_lock_is_released_on_its_session_though_a_drop_held_another(
    table: str
) -> None:
    """The run's connections are pooled; the one that took the job's advisory lock must be
    the one that releases it, even though a partition was dropped on a connection of its
    own while the batches used the run's."""
    db = Database(table, pooled=True)
    repository = PartitionsRepository(db, SourceSettings())
    batches = RunConnection(db)
    classid, objid = advisory_lock_ids("logs.cleanup")
    try:
        with job_lock(db, "logs.cleanup"):
            plan = repository.plan(NOW - timedelta(days=30))
            assert plan is not None
            old = {p.name: p for p in plan.whole}["public.p_old"]
            with repository.hold(repository.detach(old, "lock", 5, None)) as held:
                finish = held.drop_meanwhile()
                with batches.transaction() as conn:
                    conn.execute(text("SELECT 1"))
                assert finish() == 10
            batches.close()
        held_locks = scalar(table, "SELECT count(*) FROM pg_locks WHERE locktype = "
                                   f"'advisory' AND classid = {classid} AND objid = {objid}")
        assert held_locks == 0
    finally:
        batches.close()
        db.dispose()
