"""The deletion guard wired into ``logs cleanup`` and ``files cleanup``, through the real
entry point: each limit trips with nothing deleted and nothing archived, in a dry run too;
``--force`` goes through; the anomaly baseline comes from real earlier runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from archive_support import table_rows
from support import Cli, export_row, insert_exports

OLD = datetime.now(UTC) - timedelta(days=40)
RECENT = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def old_rows(url: str, first: int, count: int) -> None:
    insert_exports(url, [export_row(id=first + i, created_at=OLD + timedelta(seconds=i))
                         for i in range(count)])


def tripped(result: Any, kind: str, would: int, limit: int) -> None:
    assert result.exit_code == 2, result.stdout
    event = result.one("deletion_guard_tripped")
    assert (event["limit_kind"], event["would_delete"], event["limit"]) == (kind, would, limit)
    assert "status" not in event


@pytest.mark.parametrize("dry", [False, True])
def test_logs_max_delete_trips_before_any_archive(cli: Cli, db_url: str, tmp_path: Path,
                                                  dry: bool) -> None:
    old_rows(db_url, 1, 7)
    archive = tmp_path / "archive"

    result = cli("logs", "cleanup", "--archive-uri", archive.as_uri(), "--max-delete", "6",
                 *(["--dry-run"] if dry else []))

    tripped(result, "max_delete", 7, 6)
    summary = result.one("export_log_cleanup_complete")
    assert (summary["deleted_count"], summary["archived_count"]) == (0, 0)
    assert summary["forced"] is False
    assert len(table_rows(db_url)) == 7
    assert not archive.exists() or not list(archive.rglob("*.jsonl.gz"))


def test_logs_max_delete_zero_deletes_nothing(cli: Cli, db_url: str) -> None:
    insert_exports(db_url, [export_row(id=1, created_at=RECENT)])
    assert cli("logs", "cleanup", "--max-delete", "0").exit_code == 0  # nothing eligible
    old_rows(db_url, 2, 1)
    tripped(cli("logs", "cleanup", "--max-delete", "0"), "max_delete", 1, 0)
    assert len(table_rows(db_url)) == 2


def test_logs_fraction_of_the_table(cli: Cli, db_url: str) -> None:
    old_rows(db_url, 1, 10)
    insert_exports(db_url, [export_row(id=11, created_at=RECENT)])
    env = {"OPSCTL_LOGS__GUARD_MIN": "0", "OPSCTL_LOGS__MAX_DELETE_FRACTION": "0.5"}

    tripped(cli("logs", "cleanup", env=env), "max_delete_fraction", 10, 5)
    assert len(table_rows(db_url)) == 11

    forced = cli("logs", "cleanup", "--force", env=env)
    assert forced.exit_code == 0, forced.stdout
    summary = forced.one("export_log_cleanup_complete")
    assert (summary["forced"], summary["deleted_count"]) == (True, 10)
    assert forced.of_type("deletion_guard_tripped") == []


def test_logs_anomaly_from_real_runs(cli: Cli, db_url: str) -> None:
    env = {"OPSCTL_LOGS__GUARD_MIN": "0"}
    insert_exports(db_url, [export_row(id=5000 + i, created_at=RECENT) for i in range(100)])
    for run in range(3):  # three ordinary runs of 2, 3 and 4 rows: median 3
        old_rows(db_url, 100 * (run + 1), run + 2)
        assert cli("logs", "cleanup", env=env).exit_code == 0
    old_rows(db_url, 1000, 31)

    tripped(cli("logs", "cleanup", env=env), "anomaly", 31, 30)
    tripped(cli("logs", "cleanup", "--dry-run", env=env), "anomaly", 31, 30)
    assert len(table_rows(db_url)) == 131

    assert cli("logs", "cleanup", "--force", env=env).exit_code == 0
    assert len(table_rows(db_url)) == 100


def files_env(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "exports"
    root.mkdir(exist_ok=True)
    return {"OPSCTL_STORAGE__ROOT": str(root)}


def expired(url: str, root: Path, first: int, count: int) -> None:
    rows = []
    for i in range(count):
        path = f"e/{first + i}.json"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x")
        rows.append(export_row(id=first + i, file_path=path, expires_at=OLD))
    insert_exports(url, rows)


@pytest.mark.parametrize("dry", [False, True])
def test_files_max_delete(cli: Cli, db_url: str, tmp_path: Path, dry: bool) -> None:
    env = files_env(tmp_path)
    root = Path(env["OPSCTL_STORAGE__ROOT"])
    expired(db_url, root, 1, 5)

    result = cli("files", "cleanup", "--max-delete", "4", *(["--dry-run"] if dry else []),
                 env=env)

    tripped(result, "max_delete", 5, 4)
    assert result.one("export_file_cleanup_complete")["deleted_count"] == 0
    assert len(list((root / "e").iterdir())) == 5
    assert {r[4] for r in table_rows(db_url)} == {"completed"}


def test_files_config_max_delete_and_force(cli: Cli, db_url: str, tmp_path: Path) -> None:
    env = {**files_env(tmp_path), "OPSCTL_FILES__MAX_DELETE": "2"}
    root = Path(env["OPSCTL_STORAGE__ROOT"])
    expired(db_url, root, 1, 3)

    tripped(cli("files", "cleanup", env=env), "max_delete", 3, 2)

    forced = cli("files", "cleanup", "--force", env=env)
    assert forced.exit_code == 0, forced.stdout
    summary = forced.one("export_file_cleanup_complete")
    assert (summary["forced"], summary["deleted_count"]) == (True, 3)


def test_files_anomaly_from_real_runs(cli: Cli, db_url: str, tmp_path: Path) -> None:
    env = {**files_env(tmp_path), "OPSCTL_FILES__GUARD_MIN": "0",
           "OPSCTL_FILES__ANOMALY_FACTOR": "2"}
    root = Path(env["OPSCTL_STORAGE__ROOT"])
    for run in range(3):
        expired(db_url, root, 100 * (run + 1), 2)
        assert cli("files", "cleanup", env=env).exit_code == 0
    expired(db_url, root, 1000, 5)

    tripped(cli("files", "cleanup", env=env), "anomaly", 5, 4)
    assert len(list((root / "e").iterdir())) == 5
