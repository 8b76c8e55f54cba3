"""What only real processes show about files cleanup: a directory renamed back and forth
while a run works never turns an existing file into a ``missing`` one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from support import export_row, insert_exports, isolated_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PAST = datetime.now(UTC) - timedelta(days=1)


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def start(home: Path, url: str, root: Path, *args: str,
          env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full = {**isolated_env(home, url), "OPSCTL_STORAGE__ROOT": str(root),
            "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "opsctl", "--output", "json", "files", "cleanup", *args],
        cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT file_path, status FROM export_logs"))
            return {row.file_path: row.status for row in found}
    finally:
        engine.dispose()


def seed(url: str, root: Path, count: int) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    batch = []
    for n in range(count):
        rel = f"{'flip' if n % 2 else 'still'}/{n}.json"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
        batch.append(export_row(export_id=f"e{n}", file_path=rel, file_size_bytes=1,
                                expires_at=PAST))
    insert_exports(url, batch)


def test_a_directory_renamed_back_and_forth_never_makes_a_file_missing(
    tmp_path: Path, home: Path, db_url: str
) -> None:
    root = tmp_path / "exports"
    total = 1200
    seed(db_url, root, total)
    stop = threading.Event()
    swaps = 0

    def renamer() -> None:
        nonlocal swaps
        while not stop.is_set():
            os.rename(root / "flip", root / "flip.tmp")
            os.rename(root / "flip.tmp", root / "flip")
            swaps += 1

    flipping = threading.Thread(target=renamer)
    flipping.start()
    try:
        proc = start(home, db_url, root, "--batch-size", "10")
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop.set()
        flipping.join()
    assert proc.returncode in (0, 1), stderr
    summary = events(stdout)[-1]
    assert summary["type"] == "export_file_cleanup_complete"
    errors = [e for e in events(stdout) if e["type"] == "export_file_cleanup_error"]
    assert {e["error"]["kind"] for e in errors} <= {"directory_missing", "directory_changed"}
    assert all(e["file_path"].startswith("flip/") for e in errors)
    assert summary["missing_count"] == 0, f"{swaps} swaps"
    # The invariant: a row is expired only when its file is gone, and the other way round.
    state = rows(db_url)
    for path, status in state.items():
        assert ((root / path).exists()) == (status != "expired"), (path, status, swaps)
    # Undisturbed, the next run finishes the work.
    proc = start(home, db_url, root)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert set(rows(db_url).values()) == {"expired"}
    assert not any(p.is_file() for p in root.rglob("*"))


def test_sigterm_right_after_the_summary_changes_nothing(tmp_path: Path, home: Path,
                                                         sqlite_url: str) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    seed(sqlite_url, root, 0)
    rounds = 8
    for n in range(rounds):
        proc = start(home, sqlite_url, root, env={"PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # SIGTERM the moment the summary line is out
            lines.append(line)
            if '"exit_code"' in line:
                proc.send_signal(signal.SIGTERM)
                break
        rest, stderr = proc.communicate(timeout=60)
        found = events("".join(lines) + rest)
        assert [e["type"] for e in found] == ["export_file_cleanup_complete"], (n, found)
        assert found[0]["exit_code"] == 0
        assert proc.returncode == 0, (n, proc.returncode, stderr)
        assert "Traceback" not in stderr
    # Every run was recorded: the signal did not cut the bookkeeping after the summary.
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            codes = conn.execute(text("SELECT exit_code FROM opsctl_runs "
                                      "WHERE job = 'files.cleanup'")).scalars().all()
    finally:
        engine.dispose()
    assert codes == [0] * rounds


def test_sigterm_cuts_a_batch_pause_short(tmp_path: Path, home: Path, db_url: str) -> None:
    root = tmp_path / "exports"
    seed(db_url, root, 30)
    # Ten minutes of pause after each batch of 10: only the signal can end this run in time.
    proc = start(home, db_url, root, "--batch-size", "10",
                 env={"OPSCTL_FILES__BATCH_PAUSE_MS": "600000", "PYTHONUNBUFFERED": "1"})
    try:
        state: dict[str, str] = {}
        deadline = 0
        while deadline < 6000 and proc.poll() is None:
            state = rows(db_url)
            if list(state.values()).count("expired") == 10:
                break  # the first batch is done and marked: the run is pausing
            deadline += 1
            threading.Event().wait(0.01)
        assert list(state.values()).count("expired") == 10, state
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    summary = events(stdout)[-1]
    assert (summary["type"], summary["state"], summary["exit_code"]) == (
        "export_file_cleanup_complete", "interrupted", 143)
    assert summary["deleted_count"] == 10
    assert list(rows(db_url).values()).count("expired") == 10
    assert sum(1 for p in root.rglob("*") if p.is_file()) == 20
