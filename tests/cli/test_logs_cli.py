"""``opsctl logs stats`` and ``opsctl logs cleanup`` through the real entry point, on SQLite
and PostgreSQL, archiving to a real directory and to S3 on a moto server."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import create_engine, text
from support import Cli, database_snapshot, export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.locks import job_lock

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=2)
HOSTILE = [
    'quotes " \' `', "new\nline\r\ttab", "back\\slash \\n \\\\", "日本語 🚀 é \u2028",
    "ctrl \x01\x1f", "",
]


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    """insert_exports writes before opsctl ever ran, so the state directory must exist."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def seed(url: str, old: int = 7, recent: int = 3) -> list[dict[str, Any]]:
    """``old`` rows past the 30-day retention (hostile text in them), ``recent`` within."""
    rows = [export_row(id=i + 1, created_at=OLD + timedelta(minutes=i, microseconds=500000 * i),
                       error_message=HOSTILE[i % len(HOSTILE)], status="failed")
            for i in range(old)]
    rows += [export_row(id=old + i + 1, created_at=RECENT + timedelta(minutes=i))
             for i in range(recent)]
    insert_exports(url, rows)
    return rows


def ids(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT id FROM export_logs ORDER BY id"))]
    finally:
        engine.dispose()


def archived(directory: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        rows += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return rows


def common(event: dict[str, Any], job: str) -> None:
    for key in ("timestamp", "level", "message", "logger", "type", "run_id", "host", "version"):
        assert key in event, key
    assert event["job"] == job
    assert "status" not in event


# --- logs stats ------------------------------------------------------------------------------


def test_stats_reports_rows_eligible_and_bounds(cli: Cli, db_url: str) -> None:
    rows = seed(db_url, old=7, recent=3)

    result = cli("logs", "stats")

    assert result.exit_code == 0, result.stdout
    stats = result.one("export_log_cleanup_stats")
    common(stats, "logs.stats")
    assert (stats["retention_days"], stats["total_rows"], stats["eligible_for_cleanup"]) == (
        30, 10, 7)
    assert stats["oldest_created_at"] == OLD.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    assert stats["newest_created_at"] == rows[-1]["created_at"].isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    assert (stats["state"], stats["exit_code"]) == ("ok", 0)
    assert len(result.events) == 1


def test_stats_honours_retention_days_and_writes_nothing(cli: Cli, db_url: str) -> None:
    seed(db_url, old=4, recent=3)
    before = database_snapshot(db_url)

    result = cli("logs", "stats", "--retention-days", "1")

    stats = result.one("export_log_cleanup_stats")
    assert (stats["retention_days"], stats["eligible_for_cleanup"]) == (1, 7)
    assert database_snapshot(db_url) == before  # no opsctl tables, no run record


def test_stats_as_text(cli: Cli, db_url: str) -> None:
    seed(db_url, old=2, recent=1)

    result = cli("logs", "stats", output="text")

    assert result.exit_code == 0
    assert "2 of 3 log rows are older than 30 days" in result.stdout
    assert "oldest created_at" in result.stdout


# --- logs cleanup ----------------------------------------------------------------------------


def test_cleanup_without_archive_deletes_only_old_rows(cli: Cli, db_url: str) -> None:
    seed(db_url, old=7, recent=3)

    result = cli("logs", "cleanup", "--batch-size", "3")

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_cleanup_complete")
    common(summary, "logs.cleanup")
    assert {k: summary[k] for k in (
        "dry_run", "retention_days", "eligible_count", "archived_count", "deleted_count",
        "skipped_count", "archive_objects", "state", "exit_code")} == {
        "dry_run": False, "retention_days": 30, "eligible_count": 7, "archived_count": 0,
        "deleted_count": 7, "skipped_count": 0, "archive_objects": 0, "state": "completed",
        "exit_code": 0}
    assert ids(db_url) == [8, 9, 10]
    assert result.of_type("export_log_archive_written") == []
    engine = create_engine(db_url)
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT job, state, exit_code FROM opsctl_runs")).all()
    engine.dispose()
    assert [tuple(r) for r in recorded] == [("logs.cleanup", "completed", 0)]


def test_cleanup_archives_to_files_then_deletes(cli: Cli, db_url: str, tmp_path: Path) -> None:
    rows = seed(db_url, old=7, recent=3)
    target = tmp_path / "archive"

    result = cli("logs", "cleanup", "--archive", "--archive-uri", target.as_uri(),
                 "--batch-size", "3")

    assert result.exit_code == 0, result.stdout
    directory = target / "export_logs"
    names = sorted(p.name for p in directory.iterdir())
    run = result.one("export_log_cleanup_complete")["run_id"]
    assert names == [f"000000000001-000000000003.{run}.jsonl.gz",
                     f"000000000004-000000000006.{run}.jsonl.gz",
                     f"000000000007-000000000007.{run}.jsonl.gz"]
    written = result.of_type("export_log_archive_written")
    assert [(e["first_id"], e["last_id"], e["rows"]) for e in written] == [
        (1, 3, 3), (4, 6, 3), (7, 7, 1)]
    for event, name in zip(written, names, strict=True):
        data = (directory / name).read_bytes()
        assert event["uri"] == (directory / name).as_uri()
        assert (event["bytes"], event["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        common(event, "logs.cleanup")
    back = archived(directory)
    assert [r["id"] for r in back] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["error_message"] for r in back] == [r["error_message"] for r in rows[:7]]
    assert back[1]["created_at"] == (OLD + timedelta(minutes=1, microseconds=500000)).isoformat(
        ).replace("500000", "5")
    assert back[2]["created_at"] == (OLD + timedelta(minutes=2, seconds=1)).isoformat()
    summary = result.one("export_log_cleanup_complete")
    assert (summary["archived_count"], summary["deleted_count"], summary["archive_objects"],
            summary["archive_uri"]) == (7, 7, 3, directory.as_uri())
    assert ids(db_url) == [8, 9, 10]


@pytest.mark.s3
def test_cleanup_archives_to_s3(cli: Cli, db_url: str, s3_bucket: str,
                                s3_env: dict[str, str]) -> None:
    seed(db_url, old=5, recent=1)

    result = cli("logs", "cleanup", "--archive-uri", f"s3://{s3_bucket}/archive/",
                 "--batch-size", "2", env=s3_env)

    assert result.exit_code == 0, result.stdout
    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    run = result.one("export_log_cleanup_complete")["run_id"]
    assert keys == [f"archive/export_logs/{n}.{run}.jsonl.gz" for n in (
        "000000000001-000000000002", "000000000003-000000000004",
        "000000000005-000000000005")]
    rows = []
    for key in keys:
        body = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        rows += [json.loads(line)["id"] for line in gzip.decompress(body).splitlines()]
    assert rows == [1, 2, 3, 4, 5]
    assert ids(db_url) == [6]
    assert [e["uri"] for e in result.of_type("export_log_archive_written")] == [
        f"s3://{s3_bucket}/{k}" for k in keys]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unwritable(case: str, tmp_path: Path, port: int) -> tuple[list[str], dict[str, str]]:
    if case == "file_where_directory_should_be":
        (tmp_path / "archive").write_text("a file")
        return [(tmp_path / "archive").as_uri()], {}
    endpoint = f"http://127.0.0.1:{port}"
    return ["s3://no-such-bucket-opsctl/logs"], {
        "OPSCTL_S3__ENDPOINT_URL": endpoint, "OPSCTL_S3__CONNECT_TIMEOUT_S": "0.5",
        "OPSCTL_S3__READ_TIMEOUT_S": "0.5", "OPSCTL_S3__MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.mark.parametrize("case", ["file_where_directory_should_be", "refused_endpoint"])
def test_an_unwritable_archive_exits_3_and_deletes_nothing(
    cli: Cli, db_url: str, tmp_path: Path, closed_port: int, case: str
) -> None:
    seed(db_url, old=4, recent=1)
    uri, env = unwritable(case, tmp_path, closed_port)

    result = cli("logs", "cleanup", "--archive-uri", *uri, env=env)

    assert result.exit_code == 3, result.stdout
    error = result.one("error")
    assert error["error"]["kind"] == "archive_unavailable"
    assert error["exit_code"] == 3
    assert "Traceback" not in result.stdout + result.stderr
    assert ids(db_url) == [1, 2, 3, 4, 5]


@pytest.mark.s3
def test_a_bucket_that_does_not_exist_exits_3_and_deletes_nothing(
    cli: Cli, db_url: str, s3_env: dict[str, str]
) -> None:
    seed(db_url, old=3, recent=0)

    result = cli("logs", "cleanup", "--archive-uri", "s3://no-such-bucket-opsctl/x", env=s3_env)

    assert result.exit_code == 3
    error = result.one("error")
    assert error["error"]["kind"] == "archive_unavailable"
    assert "NoSuchBucket" in error["error"]["message"]
    assert ids(db_url) == [1, 2, 3]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_dry_run_changes_nothing_anywhere(cli: Cli, db_url: str, tmp_path: Path,
                                          how: str) -> None:
    seed(db_url, old=6, recent=2)
    assert cli("logs", "cleanup", "--retention-days", "1000").exit_code == 0  # history exists
    before = database_snapshot(db_url)
    target = tmp_path / "archive"
    flags, env = (["--dry-run"], {}) if how == "flag" else ([], {"OPSCTL_DRY_RUN": "1"})

    result = cli("logs", "cleanup", "--archive-uri", target.as_uri(), "--batch-size", "4",
                 *flags, env=env)

    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_cleanup_complete")
    assert {k: summary[k] for k in (
        "dry_run", "eligible_count", "archived_count", "deleted_count", "archive_objects",
        "state")} == {"dry_run": True, "eligible_count": 6, "archived_count": 6,
                      "deleted_count": 6, "archive_objects": 2, "state": "dry_run"}
    assert database_snapshot(db_url) == before
    assert not target.exists()


@pytest.mark.s3
def test_dry_run_writes_no_object_to_s3(cli: Cli, db_url: str, s3_bucket: str,
                                        s3_env: dict[str, str]) -> None:
    seed(db_url, old=3, recent=1)

    result = cli("logs", "cleanup", "--dry-run", "--archive-uri", f"s3://{s3_bucket}/a",
                 env=s3_env)

    assert result.exit_code == 0, result.stdout
    assert result.one("export_log_cleanup_complete")["archived_count"] == 3
    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    assert s3.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    assert ids(db_url) == [1, 2, 3, 4]


def test_a_second_run_is_skipped_with_75(cli: Cli, db_url: str) -> None:
    seed(db_url, old=3, recent=0)
    db = Database(db_url)
    try:
        with job_lock(db, "logs.cleanup"):
            result = cli("logs", "cleanup")
    finally:
        db.dispose()

    assert result.exit_code == 75
    skipped = result.one("job_skipped")
    assert (skipped["state"], skipped["exit_code"]) == ("skipped", 75)
    assert ids(db_url) == [1, 2, 3]


def test_no_archive_overrides_the_configured_archive(cli: Cli, db_url: str,
                                                     tmp_path: Path) -> None:
    seed(db_url, old=2, recent=0)
    env = {"OPSCTL_LOGS__ARCHIVE": "true",
           "OPSCTL_LOGS__ARCHIVE_URI": (tmp_path / "archive").as_uri()}

    result = cli("logs", "cleanup", "--no-archive", env=env)

    assert result.exit_code == 0
    assert result.one("export_log_cleanup_complete")["archive_uri"] is None
    assert not (tmp_path / "archive").exists()
    assert ids(db_url) == []


def test_the_configured_archive_is_used(cli: Cli, db_url: str, tmp_path: Path) -> None:
    seed(db_url, old=2, recent=0)
    env = {"OPSCTL_LOGS__ARCHIVE": "true",
           "OPSCTL_LOGS__ARCHIVE_URI": (tmp_path / "a").as_uri(),
           "OPSCTL_LOGS__BATCH_SIZE": "1"}

    result = cli("logs", "cleanup", env=env)

    assert result.exit_code == 0
    assert [r["id"] for r in archived(tmp_path / "a" / "export_logs")] == [1, 2]
    assert result.one("export_log_cleanup_complete")["archive_objects"] == 2


@pytest.mark.parametrize(("args", "env", "code"), [
    (["--archive"], {}, 64),
    (["--archive-uri", "ftp://host/dir"], {}, 64),
    (["--archive-uri", "file://relative/dir"], {}, 64),
    (["--batch-size", "0"], {}, 64),
    (["--batch-size", "100001"], {}, 64),
    (["--retention-days", "-1"], {}, 64),
    ([], {"OPSCTL_LOGS__ARCHIVE": "true"}, 78),
    ([], {"OPSCTL_LOGS__ARCHIVE_URI": "http://x"}, 78),
    ([], {"OPSCTL_LOGS__BATCH_PAUSE_MS": "-1"}, 78),
])
def test_bad_values_are_usage_or_config_errors(cli: Cli, db_url: str, args: list[str],
                                               env: dict[str, str], code: int) -> None:
    seed(db_url, old=2, recent=0)

    result = cli("logs", "cleanup", *args, env=env)

    assert result.exit_code == code, result.stdout
    assert result.one("error")["exit_code"] == code
    assert ids(db_url) == [1, 2]


def test_cleanup_as_text(cli: Cli, db_url: str) -> None:
    seed(db_url, old=2, recent=1)

    result = cli("logs", "cleanup", "--dry-run", output="text")

    assert result.exit_code == 0
    assert "would delete 2 log rows" in result.stdout
    assert "would be deleted" in result.stdout
    assert ids(db_url) == [1, 2, 3]
