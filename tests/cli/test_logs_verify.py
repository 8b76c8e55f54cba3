"""``opsctl logs verify`` through the real entry point: archives written by the real
``logs cleanup`` to a directory and to S3 (moto), catalogued, then damaged."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from archive_support import Archive, catalogue, gz
from support import Cli, export_row, insert_exports

OLD = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)


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


def archived(cli: Cli, url: str, archive: Archive, rows: int = 10, batch: int = 2) -> None:
    insert_exports(url, [export_row(id=i + 1, created_at=OLD + timedelta(minutes=i),
                                    error_message=f"row {i} ü \"q\" \\ \n")
                         for i in range(rows)])
    done = cli("logs", "cleanup", "--archive-uri", archive.root, "--batch-size", str(batch),
               env=archive.s3_env)
    assert done.exit_code == 0, done.stdout
    catalogue(url, archive)


def verify(cli: Cli, archive: Archive, *extra: str) -> tuple[int, dict[str, Any], Any]:
    result = cli("logs", "verify", "--archive-uri", archive.root, *extra, env=archive.s3_env)
    return result.exit_code, result.one("export_log_archive_verified"), result


def counts(summary: dict[str, Any]) -> tuple[int, ...]:
    return tuple(summary[k] for k in ("objects", "rows", "ok_objects", "bad_objects",
                                      "missing_objects", "unrecorded_objects"))


def test_an_intact_archive_verifies(cli: Cli, db_url: str, archive: Archive) -> None:
    archived(cli, db_url, archive, rows=7, batch=2)

    code, summary, result = verify(cli, archive)

    assert code == 0, result.stdout
    assert counts(summary) == (4, 7, 4, 0, 0, 0)
    assert summary["state"] == "ok"
    assert summary["job"] == "logs.verify"
    assert "status" not in summary


def test_every_kind_of_damage_is_found(cli: Cli, db_url: str, archive: Archive) -> None:
    archived(cli, db_url, archive, rows=12, batch=2)
    keys = archive.objects()
    assert len(keys) == 6
    truncated, flipped, forged, deleted = keys[0], keys[1], keys[2], keys[3]
    archive.write(truncated, archive.read(truncated)[:-9])
    data = bytearray(archive.read(flipped))
    data[len(data) // 2] ^= 0x01
    archive.write(flipped, bytes(data))
    rows = archive.rows(forged)
    archive.write(forged, gz([rows[0], {**rows[1], "user_id": "forged"}]))
    archive.delete(deleted)
    stray = keys[0].rpartition("/")[0] + "/000000000900-000000000900.jsonl.gz"
    archive.write(stray, gz([{**rows[0], "id": 900}]))

    code, summary, result = verify(cli, archive)

    assert code == 2, result.stdout
    # 6 written - 1 deleted + 1 stray; rows: the two intact objects, the stray and the
    # forged one (its lines are fine, its sha256 is not what the catalog recorded)
    assert counts(summary) == (6, 2 + 2 + 1, 2, 3, 1, 1)
    bad = {e["uri"].rpartition("/")[2]: e for e in result.of_type("export_log_archive_object_bad")}
    assert set(bad) == {k.rpartition("/")[2] for k in (truncated, flipped, forged)}
    assert "catalog recorded" in bad[forged.rpartition("/")[2]]["reason"]
    missing = result.one("export_log_archive_object_missing")
    assert missing["uri"].endswith(deleted)
    unrecorded = result.one("export_log_archive_object_unrecorded")
    assert unrecorded["uri"].endswith(stray) and unrecorded["rows"] == 1


def test_only_unrecorded_objects_exit_1(cli: Cli, db_url: str, archive: Archive) -> None:
    archived(cli, db_url, archive, rows=4, batch=2)
    archive.write("export_logs/000000000050-000000000051.jsonl.gz",
                  gz([export_row_json(50), export_row_json(51)]))

    code, summary, _ = verify(cli, archive)

    assert code == 1
    assert counts(summary) == (3, 6, 2, 0, 0, 1)


def test_a_stray_object_whose_ids_break_its_name_is_bad(cli: Cli, db_url: str,
                                                        archive: Archive) -> None:
    archived(cli, db_url, archive, rows=2, batch=2)
    archive.write("export_logs/000000000050-000000000051.jsonl.gz",
                  gz([export_row_json(50), export_row_json(70)]))
    archive.write("export_logs/000000000060-000000000061.jsonl.gz",
                  gzip.compress(b'{"id":60}\nnot json\n'))

    code, summary, result = verify(cli, archive)

    assert code == 2
    assert counts(summary)[3] == 2
    reasons = sorted(e["reason"] for e in result.of_type("export_log_archive_object_bad"))
    assert "outside the object's range" in reasons[0] or "outside" in reasons[1]
    assert any("not JSON" in r for r in reasons)


def test_markers_and_other_endings_are_not_objects(cli: Cli, db_url: str,
                                                   archive: Archive) -> None:
    archived(cli, db_url, archive, rows=2, batch=2)
    archive.write("export_logs/_inflight.json.gz", gzip.compress(b"{}"))
    archive.write("export_logs/manifest.json", b"{}")

    code, summary, _ = verify(cli, archive)

    assert code == 0
    assert counts(summary) == (1, 2, 1, 0, 0, 0)


def test_a_uri_with_no_objects_is_zero_objects(cli: Cli, archive: Archive,
                                               tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()  # an empty directory; S3: a bucket with nothing under it

    code, summary, _ = verify(cli, archive)

    assert code == 0
    assert counts(summary) == (0, 0, 0, 0, 0, 0)


def test_a_subdirectory_of_the_catalogued_root(cli: Cli, db_url: str,
                                               archive: Archive) -> None:
    archived(cli, db_url, archive, rows=3, batch=2)
    below = Archive(f"{archive.root}/export_logs", archive.s3_env)

    code, summary, _ = verify(cli, below)

    assert code == 0
    assert counts(summary) == (2, 3, 2, 0, 0, 0)


@pytest.mark.s3
def test_a_bucket_that_does_not_exist_is_unknown(cli: Cli, s3_env: dict[str, str]) -> None:
    result = cli("logs", "verify", "--archive-uri", "s3://no-such-bucket-opsctl/x", env=s3_env)

    assert result.exit_code == 3
    assert result.one("error")["error"]["kind"] == "archive_unavailable"


def test_a_file_where_the_directory_should_be_is_unknown(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")

    result = cli("logs", "verify", "--archive-uri", (tmp_path / "plain").as_uri())

    assert result.exit_code == 3
    assert result.one("error")["error"]["kind"] == "archive_unavailable"


@pytest.mark.parametrize("command", ["verify", "restore"])
def test_a_directory_that_does_not_exist_is_unknown(cli: Cli, db_url: str, tmp_path: Path,
                                                    command: str) -> None:
    insert_exports(db_url, [])
    missing = (tmp_path / "typo").as_uri()

    result = cli("logs", command, "--archive-uri", missing)

    assert result.exit_code == 3, result.stdout
    error = result.one("error")
    assert error["error"]["kind"] == "archive_unavailable"
    assert "does not exist" in error["error"]["message"]
    assert not (tmp_path / "typo").exists()  # a reader creates nothing


def test_a_bad_uri_is_a_usage_error(cli: Cli) -> None:
    assert cli("logs", "verify", "--archive-uri", "ftp://x/y").exit_code == 64
    assert cli("logs", "verify").exit_code == 64  # nothing configured either


def test_text_output_names_each_bad_object(cli: Cli, db_url: str, archive: Archive) -> None:
    archived(cli, db_url, archive, rows=2, batch=2)
    key = archive.objects()[0]
    archive.write(key, archive.read(key)[:10])

    result = cli("logs", "verify", "--archive-uri", archive.root, env=archive.s3_env,
                 output="text")

    assert result.exit_code == 2
    assert key.rpartition("/")[2] in (result.stdout + result.stderr).replace("\n", "")


def export_row_json(row_id: int) -> dict[str, Any]:
    row = export_row(id=row_id)
    row["created_at"] = "2026-10-01T00:00:00+00:00"
    return row
