"""``logs restore`` killed with SIGKILL at random points, then rerun: the table ends equal
to the original, column by column, with no row twice (each object is one transaction,
and rows whose id is present are left alone)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from archive_support import Archive, catalogue, table_rows
from sqlalchemy import create_engine, text
from support import Cli, export_row, insert_exports, isolated_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
OLD = datetime.now(UTC) - timedelta(days=90)


def count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM export_logs")).scalar_one())
    finally:
        engine.dispose()


def test_kill_9_during_restore_then_rerun(tmp_path: Path, home: Path, db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    total = 6_000
    insert_exports(db_url, [export_row(id=i, created_at=OLD + timedelta(seconds=i),
                                       error_message=f"é\n\"{i}\"\\")
                            for i in range(1, total + 1)])
    original = table_rows(db_url)
    archive = Archive((tmp_path / "archive").as_uri())
    cli = Cli(isolated_env(home, db_url))
    assert cli("logs", "cleanup", "--archive-uri", archive.root,
               "--batch-size", "30").exit_code == 0
    catalogue(db_url, archive)
    assert count(db_url) == 0

    env = {**isolated_env(home, db_url), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "opsctl", "--output", "json", "logs", "restore",
            "--archive-uri", archive.root]
    rng = random.Random(os.environ.get("OPSCTL_CRASH_SEED", "restore"))
    killed_midway = 0
    for _ in range(3):
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        goal = count(db_url) + rng.randint(1, total // 4)
        while proc.poll() is None and count(db_url) < goal:
            time.sleep(0.005)
        proc.kill()
        proc.wait(timeout=30)
        now = count(db_url)
        killed_midway += 0 < now < total
        assert now % 30 == 0, "an object was half restored"

    final = cli("logs", "restore", "--archive-uri", archive.root)

    assert final.exit_code == 0, final.stdout
    assert final.one("export_log_restore_complete")["objects_failed"] == 0
    assert table_rows(db_url) == original
    assert killed_midway >= 1
