"""``opsctl logs restore`` through the real entry point: rows archived by the real
``logs cleanup`` (to a directory and to S3 on moto) come back equal, column by column,
on SQLite and PostgreSQL; damaged objects give nothing back; reruns restore nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from archive_support import Archive, catalogue, gz, table_rows
from sqlalchemy import create_engine, text
from support import Cli, database_snapshot, export_row, insert_exports

from opsctl.adapters.db.tables import source_table

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=60)
HOSTILE = ['quotes " \' `', "new\nline\r\ttab", "back\\slash \\n \\\\", "日本語 🚀 é \u2028",
           "ctrl \x01\x1f", "", "[/x] <script>", "x" * 100_000]


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Archive:
    if request.param == "file":
        return Archive((tmp_path / "archive").as_uri())
    bucket = request.getfixturevalue("s3_bucket")
    return Archive(f"s3://{bucket}/logs", request.getfixturevalue("s3_env"))


def crafted(count: int, recent: int = 2) -> list[dict[str, Any]]:
    """Old rows with every awkward value a column can hold, then a few recent ones."""
    rows = []
    for i in range(count):
        rows.append(export_row(
            id=i + 1,
            created_at=OLD + timedelta(days=i, microseconds=123457 * (i % 7)),
            expires_at=None if i % 3 else OLD + timedelta(days=i + 7, microseconds=5),
            duration_ms=None if i % 4 == 1 else 1000 + i,
            file_size_bytes=None if i % 5 == 2 else 2**40 + i,
            file_path=None if i % 2 else f"exports/ü/{i}.json",
            error_type=None if i % 3 else "TimeoutError",
            error_message=HOSTILE[i % len(HOSTILE)],
            user_id=f"user-{i} \u00e9",
            status="failed" if i % 3 == 0 else "completed",
        ))
    rows += [export_row(id=count + j + 1, created_at=NOW - timedelta(hours=j + 1))
             for j in range(recent)]
    return rows


def archived_table(cli: Cli, url: str, archive: Archive, count: int = 12,
                   batch: int = 3) -> list[tuple[Any, ...]]:
    """Seed, snapshot every row, archive and delete the old ones; the snapshot."""
    insert_exports(url, crafted(count))
    original = table_rows(url)
    done = cli("logs", "cleanup", "--archive-uri", archive.root, "--batch-size", str(batch),
               env=archive.s3_env)
    assert done.exit_code == 0, done.stdout
    assert done.one("export_log_cleanup_complete")["deleted_count"] == count
    catalogue(url, archive)
    return original


def restore(cli: Cli, archive: Archive, *extra: str) -> Any:
    return cli("logs", "restore", "--archive-uri", archive.root, *extra, env=archive.s3_env)


def test_round_trip_gives_every_column_back(cli: Cli, db_url: str, archive: Archive) -> None:
    original = archived_table(cli, db_url, archive, count=12, batch=3)
    assert len(table_rows(db_url)) == 2

    result = restore(cli, archive)

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_restore_complete")
    assert {k: summary[k] for k in ("objects", "rows_read", "rows_restored", "rows_present",
                                    "objects_failed", "dry_run")} == {
        "objects": 4, "rows_read": 12, "rows_restored": 12, "rows_present": 0,
        "objects_failed": 0, "dry_run": False}
    assert summary["job"] == "logs.restore" and summary["state"] == "ok"
    assert table_rows(db_url) == original

    again = restore(cli, archive).one("export_log_restore_complete")
    assert (again["rows_restored"], again["rows_present"]) == (0, 12)
    assert table_rows(db_url) == original


def test_restore_is_recorded_as_a_run(cli: Cli, db_url: str, archive: Archive) -> None:
    archived_table(cli, db_url, archive, count=3, batch=3)
    restore(cli, archive)

    runs = cli("runs", "list").of_type("job_run")
    assert [run["job"] for run in runs].count("logs.restore") == 1


def test_since_until_restores_one_stretch_and_skips_objects(cli: Cli, db_url: str,
                                                            archive: Archive) -> None:
    original = archived_table(cli, db_url, archive, count=12, batch=3)
    since, until = OLD + timedelta(days=4), OLD + timedelta(days=7)  # ids 5, 6, 7

    result = restore(cli, archive, "--since", since.isoformat(), "--until",
                     until.strftime("%Y-%m-%dT%H:%M:%S"))

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_restore_complete")
    # objects 4-6 and 7-9 may hold them (by their catalogued created_at); 1-3, 10-12 not
    assert (summary["objects"], summary["objects_skipped"]) == (2, 2)
    assert (summary["rows_read"], summary["rows_restored"]) == (6, 3)
    restored = {row[0] for row in table_rows(db_url)}
    assert restored == {5, 6, 7, 13, 14}
    assert [r for r in table_rows(db_url) if r[0] in (5, 6, 7)] == original[4:7]


def test_into_a_side_table(cli: Cli, db_url: str, archive: Archive) -> None:
    original = archived_table(cli, db_url, archive, count=6, batch=3)
    engine = create_engine(db_url)
    source_table("side_logs", {}).create(engine)
    engine.dispose()

    result = restore(cli, archive, "--into", "side_logs")

    assert result.exit_code == 0, result.stdout
    assert table_rows(db_url, "side_logs") == original[:6]
    assert len(table_rows(db_url)) == 2  # the source table is untouched


@pytest.mark.parametrize("ddl", [
    "CREATE TABLE side_logs (id INTEGER PRIMARY KEY, created_at TEXT)",
    None,  # no such table
])
def test_into_a_table_without_the_columns_is_a_config_error(
        cli: Cli, db_url: str, archive: Archive, ddl: str | None) -> None:
    archived_table(cli, db_url, archive, count=3, batch=3)
    if ddl:
        engine = create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text(ddl))
        engine.dispose()
    before = table_rows(db_url)

    result = restore(cli, archive, "--into", "side_logs")

    assert result.exit_code == 78, result.stdout
    assert "side_logs" in result.one("error")["error"]["message"]
    assert table_rows(db_url) == before
    if ddl:
        assert table_rows(db_url, "side_logs") == []


def test_a_damaged_object_gives_nothing_back(cli: Cli, db_url: str, archive: Archive) -> None:
    original = archived_table(cli, db_url, archive, count=9, batch=3)
    first, forged, truncated = archive.objects()
    rows = archive.rows(forged)
    archive.write(forged, gz([rows[0], {**rows[1], "user_id": "forged"}, rows[2]]))
    archive.write(truncated, archive.read(truncated)[:-20])

    result = restore(cli, archive)

    assert result.exit_code == 1, result.stdout
    failed = result.of_type("export_log_restore_object_failed")
    assert sorted(e["uri"].rpartition("/")[2] for e in failed) == sorted(
        k.rpartition("/")[2] for k in (forged, truncated))
    summary = result.one("export_log_restore_complete")
    assert (summary["objects"], summary["objects_failed"], summary["rows_restored"]) == (3, 2, 3)
    assert table_rows(db_url) == original[:3] + original[9:]


def test_a_deleted_object_fails_the_restore(cli: Cli, db_url: str, archive: Archive) -> None:
    archived_table(cli, db_url, archive, count=6, batch=3)
    archive.delete(archive.objects()[0])

    result = restore(cli, archive)

    assert result.exit_code == 1
    assert "not in the archive" in result.one("export_log_restore_object_failed")["reason"]
    assert result.one("export_log_restore_complete")["rows_restored"] == 3


def test_an_unrecorded_object_of_the_table_is_restored(cli: Cli, db_url: str,
                                                       archive: Archive) -> None:
    archived_table(cli, db_url, archive, count=3, batch=3)
    row = {**crafted(1, recent=0)[0], "id": 77, "created_at": "2026-01-02T03:04:05.5+00:00",
           "expires_at": None}
    archive.write("export_logs/000000000077-000000000077.jsonl.gz", gz([row]))
    archive.write("other_table/000000000088-000000000088.jsonl.gz", gz([{**row, "id": 88}]))

    result = restore(cli, archive)

    assert result.exit_code == 0, result.stdout
    ids = {r[0] for r in table_rows(db_url)}
    assert 77 in ids and 88 not in ids


def test_dry_run_reads_and_writes_nothing(cli: Cli, db_url: str, archive: Archive) -> None:
    archived_table(cli, db_url, archive, count=6, batch=3)
    before = database_snapshot(db_url)

    result = restore(cli, archive, "--dry-run")

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_restore_complete")
    assert (summary["dry_run"], summary["rows_read"], summary["rows_restored"]) == (True, 6, 6)
    assert database_snapshot(db_url) == before


def test_nothing_to_restore(cli: Cli, db_url: str, archive: Archive, tmp_path: Path) -> None:
    insert_exports(db_url, [])
    (tmp_path / "archive").mkdir()  # an empty directory; S3: a bucket with nothing under it

    result = restore(cli, archive)

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_restore_complete")
    assert summary["objects"] == 0 and "nothing to restore" in summary["message"]


def test_bad_flags(cli: Cli, tmp_path: Path) -> None:
    uri = (tmp_path / "a").as_uri()
    assert cli("logs", "restore", "--archive-uri", uri, "--since", "2026-02-01",
               "--until", "2026-01-01").exit_code == 64
    assert cli("logs", "restore", "--archive-uri", uri, "--since", "yesterday").exit_code == 64
    assert cli("logs", "restore", "--archive-uri", uri, "--into", "x; drop").exit_code == 64


@pytest.mark.s3
def test_an_unreachable_archive_is_unknown(cli: Cli, db_url: str,
                                           s3_env: dict[str, str]) -> None:
    insert_exports(db_url, [])
    result = cli("logs", "restore", "--archive-uri", "s3://no-such-bucket-opsctl/x",
                 env=s3_env)

    assert result.exit_code == 3
    assert result.one("error")["error"]["kind"] == "archive_unavailable"
