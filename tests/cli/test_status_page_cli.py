"""``opsctl status --html PATH``: the on-call page beside the usual summary and exit code."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser import show, visible_text
from sqlalchemy import create_engine
from support import Cli, database_snapshot, export_row, insert_exports

from opsctl.adapters.db import tables

EVERY_MINUTE = "* * * * *"
SCHEDULES = {"OPSCTL_SCHEDULE__METRICS__AGGREGATE": EVERY_MINUTE,
             "OPSCTL_SCHEDULE__FAILURE_RATE__CHECK": EVERY_MINUTE,
             "OPSCTL_SCHEDULE__FILES__CLEANUP": "",
             "OPSCTL_SCHEDULE__LOGS__CLEANUP": EVERY_MINUTE,
             "OPSCTL_SCHEDULE__HEALTH__PROBE": EVERY_MINUTE}
HOSTILE = "<script>alert(1)</script> [/x] [bold]"


def run_row(job: str, started: datetime, exit_code: int = 0,
            error: dict[str, str] | None = None) -> dict[str, Any]:
    return {"job": job, "run_id": str(uuid.uuid4()), "host": "test", "started_at": started,
            "finished_at": started + timedelta(seconds=2),
            "state": "ok" if exit_code in (0, 1, 2) else "error", "exit_code": exit_code,
            "duration_ms": 2000, "summary": {}, "error": error}


@pytest.fixture
def crafted(cli: Cli, db_url: str) -> str:
    return craft(cli, db_url)


def craft(cli: Cli, db_url: str) -> str:
    """One job not overdue, one overdue, one failing with a hostile error; an open alert;
    10 exports in the last hour (2 failed); 2 files waiting for cleanup; 25 failed runs."""
    assert cli("db", "init").exit_code == 0
    t = datetime.now(UTC)
    runs = [run_row("metrics.aggregate", t - timedelta(seconds=30)),
            run_row("failure-rate.check", t - timedelta(hours=1), 2),
            run_row("health.probe", t - timedelta(minutes=2))]
    runs += [run_row("logs.cleanup", t - timedelta(hours=3, minutes=i), 3,
                     {"kind": "archive_unavailable", "message": f"old failure {i}"})
             for i in range(24)]
    runs.append(run_row("health.probe", t - timedelta(minutes=1), 3,
                        {"kind": "database_unavailable", "message": f"db {HOSTILE} down"}))
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(tables.runs.insert(), runs)
            conn.execute(tables.alert_state.insert(), [{
                "name": "failure_rate", "state": "open", "opened_at": t - timedelta(minutes=20),
                "last_notified_at": t - timedelta(minutes=20), "updated_at": t,
                "details": {"severity": "critical"}}])
    finally:
        engine.dispose()
    recent = t - timedelta(minutes=10)
    expired = t - timedelta(hours=1)
    insert_exports(db_url, [
        *(export_row(created_at=recent) for _ in range(8)),
        *(export_row(created_at=recent, status="failed") for _ in range(2)),
        *(export_row(created_at=t - timedelta(days=8), expires_at=expired,
                     file_path=f"f/{i}.json") for i in range(2)),
    ])
    return db_url


def test_status_writes_its_page_and_still_prints_its_summary(
    cli: Cli, crafted: str, tmp_path: Path
) -> None:
    before = database_snapshot(crafted)
    page = tmp_path / "www" / "index.html"
    page.parent.mkdir()
    result = cli("status", "--html", str(page), env=SCHEDULES)
    assert result.exit_code == 2, result.stdout + result.stderr
    (summary,) = result.events
    assert summary["type"] == "status_report" and summary["state"] == "critical"
    text = visible_text(page.read_text())
    assert text.startswith("opsctl status CRITICAL"), text
    assert re.search(r"failure-rate\.check 1h 0\dm ago [\d-]+ [\d:]+ UTC ok 2 "
                     r"1h 0\dm ago [\d-]+ [\d:]+ UTC OVERDUE", text)
    assert "files.cleanup never — — never not scheduled" in text
    assert re.search(r"failure_rate CRITICAL 20m \d\ds ago", text)
    assert "20.0 % 2 failed of 10 finished (threshold 10.0 %)" in text
    assert "files waiting for cleanup 2" in text
    assert f"database_unavailable: db {HOSTILE} down" in text
    # The last 20 failed runs, newest first: the hostile one and 19 of the 24 old ones.
    assert text.count("archive_unavailable: old failure") == 19
    assert "old failure 18" in text and "old failure 19" not in text
    assert sorted(p.name for p in page.parent.iterdir()) == ["index.html"]
    assert database_snapshot(crafted) == before


def test_status_page_in_a_browser(sqlite_cli: Cli, sqlite_url: str, tmp_path: Path) -> None:
    craft(sqlite_cli, sqlite_url)
    page = tmp_path / "status.html"
    assert sqlite_cli("status", "--html", str(page), env=SCHEDULES).exit_code == 2
    shown = show(page, tmp_path / "chromium", width=390)
    assert shown.requests == []
    assert "<script>alert(1)" not in shown.dom
    for job in ("metrics.aggregate", "failure-rate.check", "files.cleanup", "logs.cleanup",
                "health.probe"):
        assert job in shown.text
    assert "CRITICAL" in shown.text and "OVERDUE" in shown.text
    assert f"database_unavailable: db {HOSTILE} down" in shown.text


def test_an_empty_database_gives_a_page_that_says_so(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    insert_exports(sqlite_url, [])
    page = tmp_path / "status.html"
    result = sqlite_cli("status", "--html", str(page))
    assert result.exit_code == 0, result.stdout + result.stderr
    text = visible_text(page.read_text())
    assert "Nothing recorded yet." in text and "No failed run in the run history." in text


@pytest.mark.parametrize("where", ["missing", "file", "unwritable"])
def test_a_page_path_that_cannot_take_the_page_is_64_before_any_work(
    sqlite_cli: Cli, tmp_path: Path, where: str
) -> None:
    if where == "missing":
        page = tmp_path / "no-such-dir" / "status.html"
    elif where == "file":
        (tmp_path / "a-file").write_text("x")
        page = tmp_path / "a-file" / "status.html"
    elif os.geteuid() == 0:
        page = Path("/sys/status.html")
    else:
        page = tmp_path / "ro" / "status.html"
        page.parent.mkdir()
        page.parent.chmod(0o555)
    # The database is not even configured to a reachable place: the path fails first.
    result = sqlite_cli("status", "--html", str(page),
                        env={"OPSCTL_DATABASE__URL": "postgresql+psycopg://u@127.0.0.1:9/x"})
    assert result.exit_code == 64, result.stdout + result.stderr
    (error,) = result.events
    assert error["type"] == "error" and error["error"]["kind"] == "usage"
    assert "--html" in error["error"]["message"]
    assert not page.exists()


def test_a_down_database_is_still_3_and_writes_no_page(sqlite_cli: Cli, tmp_path: Path) -> None:
    page = tmp_path / "status.html"
    result = sqlite_cli("status", "--html", str(page),
                        env={"OPSCTL_DATABASE__URL": "postgresql+psycopg://u@127.0.0.1:9/x"})
    assert result.exit_code == 3
    assert result.events[-1]["type"] == "error" and not page.exists()
