"""Files cleanup never loses data: S3 keys taken literally, poison rows quarantined, a
directory renamed mid-run told apart from a file that is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from sqlalchemy import create_engine, text
from support import Cli, export_row, insert_exports

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
LIVE = datetime(2099, 1, 1, tzinfo=UTC)


def statuses(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT export_id, status FROM export_logs"))
            return {row.export_id: row.status for row in rows}
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@pytest.mark.s3
@pytest.mark.usefixtures("sqlite_dir")
def test_s3_keys_are_used_exactly_as_stored(cli: Cli, db_url: str, s3_env: dict[str, str],
                                            s3_endpoint: str, s3_bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    # The live export's file, and one of the two look-alikes: the other is already gone.
    client.put_object(Bucket=s3_bucket, Key="exports/a/b.json", Body=b"live export")
    client.put_object(Bucket=s3_bucket, Key="exports/a//b.json", Body=b"12345")
    insert_exports(db_url, [
        export_row(export_id="live", file_path="a/b.json", expires_at=LIVE),
        export_row(export_id="double-slash", file_path="a//b.json", file_size_bytes=None,
                   expires_at=PAST),
        export_row(export_id="dot", file_path="a/./b.json", file_size_bytes=None,
                   expires_at=PAST),
    ])
    env = {**s3_env, "OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": s3_bucket,
           "OPSCTL_STORAGE__PREFIX": "exports"}
    dry = cli("files", "cleanup", "--dry-run", env=env)
    real = cli("files", "cleanup", env=env)
    for result in (dry, real):
        assert result.exit_code == 0, result.stdout
        summary = result.one("export_file_cleanup_complete")
        assert (summary["candidates"], summary["deleted_count"], summary["missing_count"],
                summary["failed_count"], summary["bytes_freed"]) == (2, 1, 1, 0, 5)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {"exports/a/b.json"}
    body = client.get_object(Bucket=s3_bucket, Key="exports/a/b.json")["Body"].read()
    assert body == b"live export"
    assert statuses(db_url) == {"live": "completed", "double-slash": "expired",
                                "dot": "expired"}


def put(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_a_file_path_that_is_not_utf8_is_quarantined_not_fatal(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "exports"
    for n in range(5):
        put(root, f"d/{n}.json", 10)
    insert_exports(sqlite_url, [
        export_row(export_id=f"e{n}", file_path=f"d/{n}.json", file_size_bytes=10,
                   expires_at=PAST) for n in range(5)])
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE export_logs SET file_path = CAST(X'FFFE2E6A736F6E' AS TEXT) "
                          "WHERE export_id = 'e2'"))
        poison_id = conn.execute(text("SELECT id FROM export_logs WHERE export_id = 'e2'"))
        poison_id = poison_id.scalar_one()
        before = conn.execute(text("SELECT hex(file_path), status FROM export_logs "
                                   "WHERE id = :id"), {"id": poison_id}).one()
    engine.dispose()
    env = {"OPSCTL_STORAGE__ROOT": str(root)}
    first = sqlite_cli("files", "cleanup", "--batch-size", "2", env=env)
    assert first.exit_code == 1, first.stdout + first.stderr
    summary = first.one("export_file_cleanup_complete")
    assert (summary["candidates"], summary["deleted_count"], summary["missing_count"],
            summary["failed_count"], summary["bytes_freed"]) == (5, 4, 0, 1, 40)
    error = first.one("export_file_cleanup_error")
    assert (error["export_id"], error["row_id"]) == ("e2", poison_id)
    assert error["error"]["kind"] == "unreadable_row"
    assert f"row id {poison_id}" in error["error"]["message"]
    assert error["file_path"] == "\\xff\\xfe.json"
    assert sorted(p.name for p in (root / "d").iterdir()) == ["2.json"]
    assert statuses(sqlite_url) == {"e0": "expired", "e1": "expired", "e2": "completed",
                                    "e3": "expired", "e4": "expired"}
    for dry_run in (["--dry-run"], []):  # and on every later run: reported, untouched
        again = sqlite_cli("files", "cleanup", *dry_run, env=env)
        assert again.exit_code == 1, again.stdout
        summary = again.one("export_file_cleanup_complete")
        assert (summary["candidates"], summary["failed_count"]) == (1, 1)
        assert again.one("export_file_cleanup_error")["row_id"] == poison_id
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        after = conn.execute(text("SELECT hex(file_path), status FROM export_logs "
                                  "WHERE id = :id"), {"id": poison_id}).one()
    engine.dispose()
    assert tuple(after) == tuple(before) == ("FFFE2E6A736F6E", "completed")
    text_view = sqlite_cli("files", "cleanup", env=env, output="text")
    assert text_view.exit_code == 1
    assert "Traceback" not in text_view.stdout + text_view.stderr


def test_sqlite_compares_expires_at_as_instants_never_as_text(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    """A value in another format never makes a live export's file look expired: an
    integer epoch (less than any text) and garbage that sorts before the cutoff are
    reported and left alone; a -08:00 value whose text sorts before the cutoff but whose
    instant is after it, and a 'T'-separated future value, are simply not due yet."""
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "exports"
    names = ("normal", "epoch", "offset", "t-sep", "garbage")
    for name in names:
        put(root, f"d/{name}.json", 10)
    insert_exports(sqlite_url, [
        export_row(export_id=name, file_path=f"d/{name}.json", file_size_bytes=10,
                   expires_at=PAST) for name in names])
    later = datetime.now(UTC) + timedelta(hours=2)
    stored = {
        "epoch": int((datetime.now(UTC) + timedelta(days=1)).timestamp()),
        # 6 h earlier than the cutoff as text, 2 h later as an instant.
        "offset": later.astimezone(timezone(timedelta(hours=-8))).isoformat(sep=" "),
        "t-sep": (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        "garbage": "1970-garbage",
    }
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        for name, value in stored.items():
            conn.execute(text("UPDATE export_logs SET expires_at = :v WHERE export_id = :e"),
                         {"v": value, "e": name})
        ids = dict(conn.execute(text("SELECT export_id, id FROM export_logs")).all())
    engine.dispose()
    env = {"OPSCTL_STORAGE__ROOT": str(root)}

    # (candidates, deleted_count, failed_count): dry run, the run, and a later run.
    for run, counts in ((["--dry-run"], (3, 1, 2)), ([], (3, 1, 2)), ([], (2, 0, 2))):
        result = sqlite_cli("files", "cleanup", *run, env=env)
        assert result.exit_code == 1, result.stdout + result.stderr
        summary = result.one("export_file_cleanup_complete")
        assert (summary["candidates"], summary["deleted_count"],
                summary["failed_count"]) == counts
        errors = result.of_type("export_file_cleanup_error")
        assert sorted((e["row_id"], e["error"]["kind"]) for e in errors) == sorted(
            [(ids["epoch"], "unreadable_row"), (ids["garbage"], "unreadable_row")])
        messages = {e["row_id"]: e["error"]["message"] for e in errors}
        assert "expires_at is integer" in messages[ids["epoch"]]
        assert "expires_at is text that is not a timestamp" in messages[ids["garbage"]]

    assert sorted(p.name for p in (root / "d").iterdir()) == [
        "epoch.json", "garbage.json", "offset.json", "t-sep.json"]
    assert statuses(sqlite_url) == {"normal": "expired", "epoch": "completed",
                                    "offset": "completed", "t-sep": "completed",
                                    "garbage": "completed"}


@pytest.mark.usefixtures("sqlite_dir")
def test_a_directory_renamed_away_is_an_error_for_its_files_not_missing(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "exports"
    for n in range(4):
        put(root, f"day/{n}.json", 10)
    put(root, "other/x.json", 10)
    insert_exports(db_url, [
        *(export_row(export_id=f"e{n}", file_path=f"day/{n}.json", file_size_bytes=10,
                     expires_at=PAST) for n in range(4)),
        export_row(export_id="x", file_path="other/x.json", file_size_bytes=10,
                   expires_at=PAST),
        export_row(export_id="gone", file_path="other/gone.json", expires_at=PAST),
    ])
    (root / "day").rename(root / "day.moving")  # as a deploy or a sync would, mid-run
    env = {"OPSCTL_STORAGE__ROOT": str(root)}
    result = cli("files", "cleanup", env=env)
    assert result.exit_code == 1, result.stdout
    summary = result.one("export_file_cleanup_complete")
    assert (summary["deleted_count"], summary["missing_count"], summary["failed_count"]) == (
        1, 1, 4)
    errors = result.of_type("export_file_cleanup_error")
    assert sorted(e["export_id"] for e in errors) == ["e0", "e1", "e2", "e3"]
    assert {e["error"]["kind"] for e in errors} == {"directory_missing"}
    assert statuses(db_url) == {"e0": "completed", "e1": "completed", "e2": "completed",
                                "e3": "completed", "x": "expired", "gone": "expired"}
    assert len(list((root / "day.moving").iterdir())) == 4
    (root / "day.moving").rename(root / "day")  # back: the next run does the work
    again = cli("files", "cleanup", env=env)
    assert again.exit_code == 0, again.stdout
    assert again.one("export_file_cleanup_complete")["deleted_count"] == 4
    assert set(statuses(db_url).values()) == {"expired"}
    assert list((root / "day").iterdir()) == []
