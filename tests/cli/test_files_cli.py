"""``opsctl files cleanup`` through the real entry point, on SQLite and PostgreSQL, with real
files (hostile paths, symlinks, canaries outside the root) and S3 on a moto server."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import create_engine, text
from support import Cli, export_row, insert_exports
from support import database_snapshot as snapshot

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.locks import job_lock

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=1)


def statuses(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT export_id, status FROM export_logs"))
            return {row.export_id: row.status for row in rows}
    finally:
        engine.dispose()


def tree(*tops: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted(p for top in tops for p in [top, *top.rglob("*")]):
        rel = str(path)
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_file():
            found[rel] = ("file", path.read_bytes(), path.stat().st_mtime_ns)
        else:
            found[rel] = ("other", path.stat().st_mode)
    return found


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    """insert_exports writes before opsctl ever ran, so the state directory must exist."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    path = tmp_path / "outside" / "canary.txt"
    path.write_text("must survive")
    return path


def put(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def seed_local(url: str, root: Path, canary: Path) -> dict[str, str]:
    """Rows for every case; returns export_id -> the status each must end with."""
    put(root, "2026/11/a.json", 1000)
    put(root, "2026/11/b.csv", 2345)  # its row has no size: the real size counts
    put(root, "2026/11/future.json", 10)
    put(root, "2026/11/old.json", 10)
    put(root, "deep/ok.txt", 1)
    (root / "linkdir").symlink_to(canary.parent, target_is_directory=True)
    (root / "deep" / "up").symlink_to(canary.parent, target_is_directory=True)
    (root / "link.json").symlink_to(canary)
    os.mkfifo(root / "fifo")
    (root / "adir").mkdir()
    rows = {
        "deleted-a": ("2026/11/a.json", 1000, PAST, "completed", "expired"),
        "deleted-b": ("2026/11/b.csv", None, PAST, "failed", "expired"),
        "missing": ("2026/11/gone.json", 500, PAST, "completed", "expired"),
        "future": ("2026/11/future.json", 10, FUTURE, "completed", "completed"),
        "already": ("2026/11/old.json", 10, PAST, "expired", "expired"),
        "no-file": (None, None, PAST, "failed", "failed"),
        "dotdot": ("../outside/canary.txt", 12, PAST, "completed", "completed"),
        "absolute": (str(canary), 12, PAST, "completed", "completed"),
        "etc": ("/etc/passwd", 12, PAST, "completed", "completed"),
        "sneaky": ("a/../../outside/canary.txt", 12, PAST, "completed", "completed"),
        "linkdir": ("linkdir/canary.txt", 12, PAST, "completed", "completed"),
        "deeplink": ("deep/up/canary.txt", 12, PAST, "completed", "completed"),
        "linkfile": ("link.json", 12, PAST, "completed", "completed"),
        "fifo": ("fifo", 12, PAST, "completed", "completed"),
        "dir": ("adir", 12, PAST, "completed", "completed"),
    }
    insert_exports(url, [
        export_row(export_id=eid, file_path=path, file_size_bytes=size, expires_at=expires,
                   status=status)
        for eid, (path, size, expires, status, _) in rows.items()
    ])
    return {eid: spec[4] for eid, spec in rows.items()}


HOSTILE = {"dotdot", "absolute", "etc", "sneaky", "linkdir", "deeplink", "linkfile", "fifo",
           "dir"}


def test_local_cleanup_end_to_end(cli: Cli, db_url: str, root: Path, canary: Path) -> None:
    expected = seed_local(db_url, root, canary)
    result = cli("files", "cleanup", env={"OPSCTL_STORAGE__ROOT": str(root)})
    assert result.exit_code == 1, result.stdout + result.stderr
    summary = result.one("export_file_cleanup_complete")
    assert {k: summary[k] for k in (
        "dry_run", "candidates", "deleted_count", "missing_count", "failed_count",
        "bytes_freed", "state", "exit_code", "level")} == {
        "dry_run": False, "candidates": 12, "deleted_count": 2, "missing_count": 1,
        "failed_count": 9, "bytes_freed": 1000 + 2345, "state": "partial", "exit_code": 1,
        "level": "warning"}
    assert isinstance(summary["duration_ms"], int) and summary["duration_ms"] >= 0
    assert summary["job"] == "files.cleanup"
    errors = result.of_type("export_file_cleanup_error")
    assert {e["export_id"] for e in errors} == HOSTILE
    for event in errors:
        assert set(event["error"]) == {"kind", "message"}
        assert event["error"]["kind"] in {"unsafe_path", "not_regular_file"}
        assert event["file_path"] in event["error"]["message"]
        assert "status" not in event
    kinds = {e["export_id"]: e["error"]["kind"] for e in errors}
    assert kinds["fifo"] == kinds["dir"] == "not_regular_file"
    assert statuses(db_url) == expected
    assert canary.read_text() == "must survive"
    assert (root / "link.json").is_symlink() and (root / "fifo").exists()
    assert sorted(p.name for p in (root / "2026" / "11").iterdir()) == ["future.json",
                                                                       "old.json"]
    assert all("status" not in event for event in result.events)


def test_second_run_finds_only_the_refused_files(cli: Cli, db_url: str, root: Path,
                                                 canary: Path) -> None:
    seed_local(db_url, root, canary)
    env = {"OPSCTL_STORAGE__ROOT": str(root)}
    cli("files", "cleanup", env=env)
    again = cli("files", "cleanup", env=env).one("export_file_cleanup_complete")
    assert (again["candidates"], again["deleted_count"], again["failed_count"]) == (9, 0, 9)


def test_clean_run_exits_0(cli: Cli, db_url: str, root: Path) -> None:
    put(root, "x/1.json", 7)
    insert_exports(db_url, [export_row(export_id="one", file_path="x/1.json",
                                       file_size_bytes=None, expires_at=PAST)])
    result = cli("files", "cleanup", env={"OPSCTL_STORAGE__ROOT": str(root)})
    assert result.exit_code == 0
    summary = result.one("export_file_cleanup_complete")
    assert (summary["state"], summary["deleted_count"], summary["bytes_freed"]) == ("ok", 1, 7)
    assert statuses(db_url) == {"one": "expired"}


def test_limit_and_batch_size_flags(cli: Cli, db_url: str, root: Path) -> None:
    rows = []
    for n in range(7):
        put(root, f"f{n}.json", 1)
        rows.append(export_row(export_id=f"e{n}", file_path=f"f{n}.json", expires_at=PAST))
    insert_exports(db_url, rows)
    result = cli("files", "cleanup", "--limit", "5", "--batch-size", "2",
                 env={"OPSCTL_STORAGE__ROOT": str(root)})
    summary = result.one("export_file_cleanup_complete")
    assert (summary["candidates"], summary["deleted_count"], summary["limit"]) == (7, 5, 5)
    assert sorted(p.name for p in root.iterdir()) == ["f5.json", "f6.json"]
    assert [s for _, s in sorted(statuses(db_url).items())] == ["expired"] * 5 + [
        "completed"] * 2


@pytest.mark.parametrize("args", [["--limit", "0"], ["--batch-size", "0"],
                                  ["--batch-size", "10001"], ["--limit", "x"]])
def test_bad_flags_exit_64(cli: Cli, args: list[str]) -> None:
    result = cli("files", "cleanup", *args)
    assert result.exit_code == 64
    assert result.events[-1]["error"]["kind"] == "usage"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_dry_run_changes_nothing_anywhere(cli: Cli, db_url: str, root: Path, canary: Path,
                                          how: str) -> None:
    seed_local(db_url, root, canary)
    assert cli("db", "init").exit_code == 0
    before_db, before_files = snapshot(db_url), tree(root, canary.parent)
    args = ["--dry-run"] if how == "flag" else []
    env = {"OPSCTL_STORAGE__ROOT": str(root)} | ({"OPSCTL_DRY_RUN": "1"} if how == "env" else {})
    result = cli("files", "cleanup", *args, env=env)
    summary = result.one("export_file_cleanup_complete")
    assert {k: summary[k] for k in ("dry_run", "candidates", "deleted_count", "missing_count",
                                    "failed_count", "bytes_freed", "state", "exit_code")} == {
        "dry_run": True, "candidates": 12, "deleted_count": 2, "missing_count": 1,
        "failed_count": 9, "bytes_freed": 3345, "state": "dry_run", "exit_code": 1}
    assert all(e["dry_run"] for e in result.of_type("export_file_cleanup_error"))
    assert snapshot(db_url) == before_db
    assert tree(root, canary.parent) == before_files


def test_dry_run_text_view_lists_a_sample(cli: Cli, db_url: str, root: Path) -> None:
    put(root, "[red]odd.json", 1500)
    insert_exports(db_url, [export_row(export_id="odd", file_path="[red]odd.json",
                                       file_size_bytes=1500, expires_at=PAST)])
    result = cli("files", "cleanup", "--dry-run", output="text",
                 env={"OPSCTL_STORAGE__ROOT": str(root), "COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "[red]odd.json" in result.stdout  # shown literally, not taken for markup
    assert "1.5 kB" in result.stdout
    assert "would delete" in result.stdout
    assert (root / "[red]odd.json").exists()


@pytest.mark.parametrize("root_value", ["/", ""])
def test_root_slash_or_empty_exits_78(cli: Cli, root_value: str) -> None:
    result = cli("files", "cleanup", env={"OPSCTL_STORAGE__ROOT": root_value})
    assert result.exit_code == 78
    error = result.one("error")
    assert error["error"]["kind"] == "config" and "storage.root" in error["error"]["message"]


@pytest.mark.parametrize("kind", ["missing", "file", "symlink-to-slash"])
def test_unusable_root_exits_78_before_touching_rows(cli: Cli, db_url: str, tmp_path: Path,
                                                     kind: str) -> None:
    insert_exports(db_url, [export_row(export_id="e", file_path="a", expires_at=PAST)])
    target = tmp_path / "not-a-root"
    if kind == "file":
        target.write_text("")
    elif kind == "symlink-to-slash":
        target.symlink_to("/", target_is_directory=True)
    result = cli("files", "cleanup", env={"OPSCTL_STORAGE__ROOT": str(target)})
    assert result.exit_code == 78
    assert result.one("error")["error"]["kind"] == "config"
    assert statuses(db_url) == {"e": "completed"}


def test_second_run_while_locked_exits_75(cli: Cli, db_url: str, root: Path) -> None:
    insert_exports(db_url, [export_row(export_id="e", file_path="a", expires_at=PAST)])
    put(root, "a", 1)
    db = Database(db_url)
    try:
        with job_lock(db, "files.cleanup"):
            result = cli("files", "cleanup", env={"OPSCTL_STORAGE__ROOT": str(root)})
    finally:
        db.dispose()
    assert result.exit_code == 75
    skipped = result.one("job_skipped")
    assert skipped["exit_code"] == 75 and skipped["reason"]
    assert (root / "a").exists() and statuses(db_url) == {"e": "completed"}


# --- S3 --------------------------------------------------------------------------------


def s3_keys(endpoint: str, bucket: str) -> set[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.mark.s3
def test_s3_cleanup_respects_the_prefix(cli: Cli, db_url: str, s3_env: dict[str, str],
                                        s3_endpoint: str, s3_bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    for key in ("exports/a.json", "exports/d/b.json", "a.json", "secret.txt", "exports/c.json"):
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"12345")
    insert_exports(db_url, [
        export_row(export_id="a", file_path="a.json", file_size_bytes=100, expires_at=PAST),
        export_row(export_id="b", file_path="d/b.json", file_size_bytes=None, expires_at=PAST),
        export_row(export_id="gone", file_path="gone.json", file_size_bytes=None,
                   expires_at=PAST),
        export_row(export_id="up", file_path="../secret.txt", expires_at=PAST),
        export_row(export_id="c", file_path="c.json", expires_at=FUTURE),
    ])
    env = {**s3_env, "OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": s3_bucket,
           "OPSCTL_STORAGE__PREFIX": "exports"}
    result = cli("files", "cleanup", env=env)
    assert result.exit_code == 1, result.stdout
    summary = result.one("export_file_cleanup_complete")
    assert {k: summary[k] for k in ("candidates", "deleted_count", "missing_count",
                                    "failed_count", "bytes_freed", "backend")} == {
        "candidates": 4, "deleted_count": 2, "missing_count": 1, "failed_count": 1,
        "bytes_freed": 105, "backend": "s3"}
    assert result.one("export_file_cleanup_error")["export_id"] == "up"
    assert s3_keys(s3_endpoint, s3_bucket) == {"a.json", "secret.txt", "exports/c.json"}
    assert statuses(db_url) == {"a": "expired", "b": "expired", "gone": "expired",
                                "up": "completed", "c": "completed"}


@pytest.mark.s3
def test_s3_missing_objects_count_the_same_in_dry_run_and_real_run(
    cli: Cli, db_url: str, s3_env: dict[str, str], s3_endpoint: str, s3_bucket: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    # Date-organised keys; every third object is already gone although its row has a size.
    paths = {f"e{n}": f"2026/11/{20 + n // 4}/{n:04d}.json" for n in range(12)}
    for n, path in enumerate(paths.values()):
        if n % 3:
            client.put_object(Bucket=s3_bucket, Key=f"exports/{path}", Body=b"x" * n)
    client.put_object(Bucket=s3_bucket, Key="exports/2026/11/20/other.json", Body=b"keep")
    insert_exports(db_url, [
        export_row(export_id=eid, file_path=path, file_size_bytes=None if n % 2 else 100 + n,
                   expires_at=PAST)
        for n, (eid, path) in enumerate(paths.items())
    ])
    env = {**s3_env, "OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": s3_bucket,
           "OPSCTL_STORAGE__PREFIX": "exports"}
    assert cli("db", "init").exit_code == 0
    before_keys, before_db = s3_keys(s3_endpoint, s3_bucket), snapshot(db_url)
    fields = ("candidates", "deleted_count", "missing_count", "failed_count", "bytes_freed")
    # present: n = 1, 2, 4, 5, 7, 8, 10, 11; odd n have no size and count their real bytes
    expected = {"candidates": 12, "deleted_count": 8, "missing_count": 4, "failed_count": 0,
                "bytes_freed": 102 + 1 + 104 + 5 + 7 + 108 + 110 + 11}
    dry = cli("files", "cleanup", "--dry-run", env=env)
    assert dry.exit_code == 0, dry.stdout
    assert {k: dry.one("export_file_cleanup_complete")[k] for k in fields} == expected
    assert s3_keys(s3_endpoint, s3_bucket) == before_keys
    assert snapshot(db_url) == before_db
    real = cli("files", "cleanup", env=env)
    assert real.exit_code == 0, real.stdout
    assert {k: real.one("export_file_cleanup_complete")[k] for k in fields} == expected
    assert s3_keys(s3_endpoint, s3_bucket) == {"exports/2026/11/20/other.json"}
    assert set(statuses(db_url).values()) == {"expired"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_s3_unreachable_exits_3_and_changes_no_row(cli: Cli, db_url: str) -> None:
    insert_exports(db_url, [export_row(export_id=f"e{n}", file_path=f"{n}.json",
                                       file_size_bytes=1, expires_at=PAST) for n in range(3)])
    env = {"OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": "exports",
           "OPSCTL_S3__ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
           "OPSCTL_S3__CONNECT_TIMEOUT_S": "0.5", "OPSCTL_S3__MAX_ATTEMPTS": "1",
           "OPSCTL_S3__ACCESS_KEY_ID": "AKIAOPSCTL", "OPSCTL_S3__SECRET_ACCESS_KEY": "s3cr3t-key"}
    result = cli("files", "cleanup", env=env)
    assert result.exit_code == 3
    error = result.one("error")
    assert error["error"]["kind"] == "storage_unavailable"
    assert "endpoint unreachable" in error["error"]["message"]
    assert error["exit_code"] == 3
    assert result.of_type("export_file_cleanup_complete") == []
    assert "Traceback" not in result.stdout + result.stderr
    assert "s3cr3t-key" not in result.stdout + result.stderr
    assert set(statuses(db_url).values()) == {"completed"}
