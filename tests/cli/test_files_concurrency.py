"""What only real processes show: four concurrent runs handle each file exactly once, and
SIGTERM stops a run between batches with its summary and exit 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from support import export_row, insert_exports, isolated_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAST = datetime.now(UTC) - timedelta(days=1)


def seed(url: str, root: Path, count: int) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(count):
        rel = f"{n % 20:02d}/{n}.json"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
        rows.append(export_row(export_id=f"e{n}", file_path=rel, file_size_bytes=1,
                               expires_at=PAST))
    insert_exports(url, rows)


def status_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) AS n FROM export_logs "
                                     "GROUP BY status"))
            return {row.status: row.n for row in rows}
    finally:
        engine.dispose()


def files_left(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def start(home: Path, url: str, root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**isolated_env(home, url), "OPSCTL_STORAGE__ROOT": str(root),
           "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "opsctl", "--output", "json", "files", "cleanup", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_four_concurrent_runs_handle_each_file_once(tmp_path: Path, home: Path,
                                                    db_url: str) -> None:
    root = tmp_path / "exports"
    total = 1500
    seed(db_url, root, total)
    procs = [start(home, db_url, root, "--batch-size", "25") for _ in range(4)]
    results = [(proc.wait(timeout=90), *proc.communicate()) for proc in procs]
    deleted = missing = 0
    for code, stdout, stderr in results:
        assert code in (0, 75), stderr
        last = events(stdout)[-1]
        assert last["exit_code"] == code
        if code == 75:
            assert last["type"] == "job_skipped" and last["reason"]
        else:
            assert last["type"] == "export_file_cleanup_complete"
            assert last["failed_count"] == 0
            deleted += last["deleted_count"]
            missing += last["missing_count"]
    # A file handled twice would show up as "missing" in the second run.
    assert (deleted, missing) == (total, 0)
    assert status_counts(db_url) == {"expired": total}
    assert files_left(root) == 0


def test_sigterm_stops_between_batches_with_a_summary(tmp_path: Path, home: Path,
                                                      db_url: str) -> None:
    root = tmp_path / "exports"
    total = 1500
    seed(db_url, root, total)
    proc = start(home, db_url, root, "--batch-size", "1")
    deadline = time.monotonic() + 60
    while files_left(root) == total and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    summary = events(stdout)[-1]
    assert summary["type"] == "export_file_cleanup_complete"
    assert (summary["state"], summary["exit_code"]) == ("interrupted", 143)
    assert 0 < summary["deleted_count"] < total
    assert "Traceback" not in stderr
    # The batch in flight was finished: every deleted file's row is marked, and no other.
    gone = total - files_left(root)
    assert gone == summary["deleted_count"]
    assert status_counts(db_url) == {"expired": gone, "completed": total - gone}
