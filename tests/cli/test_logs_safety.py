"""``logs cleanup`` loses nothing under the interleavings an adversarial review found: a row
changed while its batch is archived, a row changed while a killed run's batch waited,
archive names that repeat, and SQLite values that are no timestamps. Real processes, a
second real connection holding locks, real files, moto S3 over HTTP."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import Connection, create_engine, text
from support import Cli, export_row, insert_exports, isolated_env

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=45)


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def seed(url: str, count: int, first: int = 1, note: str = "") -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD + timedelta(seconds=i),
                                    error_message=f"{note}#{i}" if note else None)
                         for i in range(first, first + count)])


def table_rows(url: str) -> dict[int, dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {row.id: {"error_message": row.error_message, "created_at": row.created_at}
                    for row in conn.execute(text("SELECT * FROM export_logs"))}
    finally:
        engine.dispose()


def catalog(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(text(
                "SELECT uri, key, first_id, last_id, rows, bytes, sha256, run_id "
                "FROM opsctl_archive_objects ORDER BY id"))]
    finally:
        engine.dispose()


class Archive:
    """The objects under an archive URI, local or S3, read the way a restore would."""

    def __init__(self, uri: str, s3_env: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.env = s3_env or {}

    def objects(self) -> dict[str, bytes]:
        """Every object name under ``<uri>/export_logs/`` and its stored bytes."""
        if self.uri.startswith("file://"):
            directory = Path(self.uri.removeprefix("file://")) / "export_logs"
            if not directory.exists():
                return {}
            return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}
        s3 = boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret-key")
        bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/export_logs/")
        return {o["Key"].rpartition("/")[2]: s3.get_object(Bucket=bucket, Key=o["Key"])[
            "Body"].read() for o in listing.get("Contents", [])}

    def rows(self) -> list[dict[str, Any]]:
        found = []
        for key, data in self.objects().items():
            if key.endswith(".jsonl.gz"):
                found += [json.loads(line) for line in gzip.decompress(data).splitlines()]
        return found


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Archive:
    if request.param == "file":
        return Archive((tmp_path / "archive").as_uri())
    env: dict[str, str] = request.getfixturevalue("s3_env")
    bucket: str = request.getfixturevalue("s3_bucket")
    return Archive(f"s3://{bucket}/logs", env)


def start(home: Path, url: str, archive: Archive, *args: str) -> subprocess.Popen[str]:
    env = {**isolated_env(home, url), **archive.env, "PYTHONPATH": str(REPO),
           "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "opsctl", "--output", "json", "logs", "cleanup",
         "--archive-uri", archive.uri, *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def locker(pg_url: str) -> Iterator[Connection]:
    """A second real connection, in a transaction the test commits when it chooses."""
    engine = create_engine(pg_url)
    conn = engine.connect()
    try:
        yield conn
    finally:
        conn.close()
        engine.dispose()


def wait_until_blocked(url: str, proc: subprocess.Popen[str], sessions: int = 1) -> None:
    """Until ``sessions`` of opsctl's sessions wait for a lock (a batch delete waiting for
    a row, or a batch's catalogue row waiting for the catalogue table)."""
    engine = create_engine(url)
    try:
        for _ in range(600):
            assert proc.poll() is None, proc.communicate()
            with engine.connect() as conn:
                if conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'opsctl' AND wait_event_type = 'Lock'")).scalar_one() >= sessions:
                    return
            time.sleep(0.1)
        raise AssertionError("opsctl never waited for the row lock")
    finally:
        engine.dispose()


def summary(stdout: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(stdout.splitlines()[-1])
    return result


def check_nothing_lost(url: str, archive: Archive, ids: range) -> None:
    """Every row is in the table or in exactly one object; an archived row is gone."""
    rows = archive.rows()
    counts = Counter(row["id"] for row in rows)
    assert [i for i, n in counts.items() if n > 1] == []
    left = table_rows(url)
    assert set(counts) | set(left) == set(ids)
    assert set(counts) & set(left) == set()


# --- a row that changes while its batch is archived ------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_row_changed_while_its_batch_is_archived_is_archived_in_its_new_version(
    db_url: str, home: Path, archive: Archive, locker: Connection
) -> None:
    seed(db_url, 300)
    locker.begin()
    locker.execute(text(
        "UPDATE export_logs SET error_message = 'CHANGED-AFTER-READ' WHERE id = 5"))
    proc = start(home, db_url, archive, "--batch-size", "100")

    wait_until_blocked(db_url, proc)  # batch 1-100 was read and archived, its delete waits
    locker.commit()
    stdout, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 0, stderr
    assert summary(stdout)["deleted_count"] == 300
    by_id = {row["id"]: row for row in archive.rows()}
    assert by_id[5]["error_message"] == "CHANGED-AFTER-READ"
    assert sorted(by_id) == list(range(1, 301))
    check_nothing_lost(db_url, archive, range(1, 301))
    assert sorted(archive.objects()) == sorted(e["key"].rpartition("/")[2]
                                               for e in catalog(db_url))


# --- crash recovery applies the cutoff and the archived content ------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_recovery_does_not_delete_a_row_changed_after_the_kill(
    db_url: str, home: Path, archive: Archive, locker: Connection
) -> None:
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.migrations import ensure_schema

    seed(db_url, 300)
    db = Database(db_url)
    ensure_schema(db)  # the catalogue table, to hold before the run starts
    db.dispose()
    locker.begin()
    # Each batch is deleted, archived and verified, then its delete commits with its
    # catalogue row: holding the catalogue stops both batches in flight (1-100, 101-200)
    # with their objects published and their deletes not committed.
    locker.execute(text("LOCK TABLE opsctl_archive_objects IN SHARE MODE"))
    proc = start(home, db_url, archive, "--batch-size", "100")
    wait_until_blocked(db_url, proc, sessions=2)
    proc.kill()
    proc.communicate(timeout=30)
    assert len([name for name in archive.objects() if name.endswith(".jsonl.gz")]) == 2
    locker.execute(text("UPDATE export_logs SET created_at = now(), "
                        "error_message = 'UPDATED AFTER KILL' WHERE id = 150"))
    locker.commit()

    rerun = start(home, db_url, archive, "--batch-size", "100")
    stdout, stderr = rerun.communicate(timeout=120)

    assert rerun.returncode == 0, stderr
    assert table_rows(db_url)[150]["error_message"] == "UPDATED AFTER KILL"
    assert sorted(table_rows(db_url)) == [150]
    check_nothing_lost(db_url, archive, range(1, 301))
    types = [json.loads(line)["type"] for line in stdout.splitlines()]
    # 1-100 is finished as it was archived; 101-200 holds a row changed since: removed.
    assert types.count("export_log_archive_recovered") == 1
    assert types.count("export_log_archive_discarded") == 1
    assert sum(entry["rows"] for entry in catalog(db_url)) == 299
    assert not any(name.startswith(".inflight") for name in archive.objects())


# --- archive objects are never overwritten --------------------------------------------------


def test_ids_that_repeat_never_overwrite_an_earlier_object(
    db_url: str, home: Path, archive: Archive
) -> None:
    cli = Cli({**isolated_env(home, db_url), **archive.env})
    seed(db_url, 5, note="first life")
    first = cli("logs", "cleanup", "--archive-uri", archive.uri, "--batch-size", "10")
    seed(db_url, 5, note="second life")  # the same ids again: SQLite reuse, a rebuilt table

    second = cli("logs", "cleanup", "--archive-uri", archive.uri, "--batch-size", "10")

    assert (first.exit_code, second.exit_code) == (0, 0), second.stdout
    rows = archive.rows()
    assert sorted(row["error_message"] for row in rows) == sorted(
        [f"first life#{i}" for i in range(1, 6)] + [f"second life#{i}" for i in range(1, 6)])
    runs = [first.one("export_log_cleanup_complete")["run_id"],
            second.one("export_log_cleanup_complete")["run_id"]]
    names = sorted(archive.objects())
    assert names == sorted(f"000000000001-000000000005.{run}.jsonl.gz" for run in runs)
    entries = catalog(db_url)
    assert [(e["key"], e["rows"], e["run_id"]) for e in entries] == [
        (f"export_logs/000000000001-000000000005.{run}.jsonl.gz", 5, run) for run in runs]
    stored = archive.objects()
    for entry in entries:
        data = stored[entry["key"].rpartition("/")[2]]
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert entry["uri"] == archive.uri


# --- SQLite: timestamps compared as instants, poison rows quarantined -----------------------


def sqlite_rows_of_every_kind(url: str) -> datetime:
    """Rows 1 (old), 2 (integer epoch of now), 3 (newer than the cutoff, written with a
    -08:00 offset so its text sorts before the cutoff's), 4 (garbage), 5 (old, +05:00)."""
    insert_exports(url, [export_row(id=i, created_at=OLD) for i in range(1, 6)])
    cutoff = datetime.now(UTC) - timedelta(days=30)
    newer = (cutoff + timedelta(hours=2)).astimezone(timezone_of(-8))
    older = (cutoff - timedelta(days=1)).astimezone(timezone_of(5))
    engine = create_engine(url)
    with engine.begin() as conn:
        for row_id, value in ((2, int(time.time())), (3, newer.isoformat(sep=" ")),
                              (4, "1970-garbage"), (5, older.isoformat(sep=" "))):
            conn.execute(text("UPDATE export_logs SET created_at = :v WHERE id = :i"),
                         {"v": value, "i": row_id})
    engine.dispose()
    return cutoff


def timezone_of(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("with_archive", [False, True])
def test_sqlite_never_deletes_by_text_order_and_quarantines_poison_rows(
    db_url: str, home: Path, tmp_path: Path, with_archive: bool
) -> None:
    sqlite_rows_of_every_kind(db_url)
    cli = Cli(isolated_env(home, db_url))
    flags = ["--archive-uri", (tmp_path / "a").as_uri()] if with_archive else ["--no-archive"]

    result = cli("logs", "cleanup", *flags)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert sorted(table_rows(db_url)) == [2, 3, 4]
    quarantined = result.of_type("export_log_row_quarantined")
    assert [(e["id"], e["level"]) for e in quarantined] == [(2, "warning"), (4, "warning")]
    assert "integer" in quarantined[0]["reason"]
    done = result.one("export_log_cleanup_complete")
    assert (done["deleted_count"], done["quarantined_count"], done["state"]) == (
        2, 2, "warning")
    if with_archive:
        assert sorted(row["id"] for row in Archive((tmp_path / "a").as_uri()).rows()) == [1, 5]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_stats_report_poison_rows_instead_of_failing(db_url: str, home: Path) -> None:
    sqlite_rows_of_every_kind(db_url)

    result = Cli(isolated_env(home, db_url))("logs", "stats")

    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert [e["id"] for e in result.of_type("export_log_row_quarantined")] == [2, 4]
    stats = result.one("export_log_cleanup_stats")
    assert (stats["total_rows"], stats["eligible_for_cleanup"], stats["quarantined_count"]) == (
        5, 2, 2)
    assert stats["oldest_created_at"] == OLD.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# --- two databases, one archive URI -----------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_two_databases_on_one_uri_never_settle_each_others_batch(
    tmp_path: Path, home: Path, archive: Archive
) -> None:
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.migrations import ensure_schema
    from opsctl.adapters.db.old_logs import OldLogsRepository
    from opsctl.domain.archive_names import marker_name, object_name
    from opsctl.settings.data import SourceSettings

    urls = {}
    for which in ("a", "b"):
        urls[which] = f"sqlite:///{tmp_path / which / 'opsctl.db'}"
        (tmp_path / which).mkdir()
        seed(urls[which], 3, note=f"database {which}")
    # Database a's run archived rows 1-3 and was killed before its delete.
    db = Database(urls["a"])
    ensure_schema(db)
    repository = OldLogsRepository(db, SourceSettings())
    batch = next(repository.batches(NOW - timedelta(days=30), 10))
    marker = marker_name(repository.source_identity())
    repository.close()
    db.dispose()
    orphan = object_name(1, 3, "killed-run")
    a_cli = Cli({**isolated_env(home, urls["a"]), **archive.env})
    b_cli = Cli({**isolated_env(home, urls["b"]), **archive.env})
    put(archive, orphan, gzip.compress(batch.payload))
    put(archive, marker, json.dumps({"object": orphan, "first_id": 1, "last_id": 3,
                                     "rows": 3}).encode())

    b = b_cli("logs", "cleanup", "--archive-uri", archive.uri)

    assert b.exit_code == 0, b.stdout
    assert b.of_type("export_log_archive_discarded") == []
    assert b.one("export_log_cleanup_complete")["recovered_count"] == 0
    assert orphan in archive.objects() and marker in archive.objects()

    a = a_cli("logs", "cleanup", "--archive-uri", archive.uri)

    assert a.exit_code == 0, a.stdout
    assert a.one("export_log_cleanup_complete")["recovered_count"] == 3
    assert sorted(row["error_message"] for row in archive.rows()) == sorted(
        [f"database {w}#{i}" for w in "ab" for i in (1, 2, 3)])
    assert not [name for name in archive.objects() if name.startswith(".inflight")]


def put(archive: Archive, name: str, data: bytes) -> None:
    if archive.uri.startswith("file://"):
        directory = Path(archive.uri.removeprefix("file://")) / "export_logs"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
        return
    s3 = boto3.client("s3", endpoint_url=archive.env["AWS_ENDPOINT_URL"],
                      region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing-secret-key")
    bucket, _, prefix = archive.uri.removeprefix("s3://").partition("/")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/export_logs/{name}", Body=data)
