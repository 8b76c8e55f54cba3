"""The deletion guard wired into ``files cleanup``, through the real
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
