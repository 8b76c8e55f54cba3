"""``opsctl metrics report --html PATH``: the page beside the usual summary and exit code."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from browser import show, visible_text
from support import Cli, export_row, insert_exports

from opsctl.adapters.db.database import Database

H = timedelta(hours=1)


def last_complete_hour_end() -> datetime:
    """The start of the current hour, away from its end so a run cannot straddle it."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 45:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def seed(url: str, end: datetime) -> None:
    """Three hours before ``end``: 5 exports (1 failed), nothing, then 3 (2 failed)."""
    Database(url).engine.dispose()  # creates the SQLite directory
    first, last = end - 3 * H, end - H
    insert_exports(url, [
        *(export_row(duration_ms=100 * (i + 1), created_at=first + timedelta(minutes=i))
          for i in range(4)),
        export_row(status="failed", error_type="timeout", created_at=first),
        export_row(duration_ms=1000, created_at=last),
        export_row(status="failed", created_at=last + timedelta(minutes=1)),
        export_row(status="failed", created_at=last + timedelta(minutes=2)),
    ])


def test_report_writes_its_page_and_still_prints_its_summary(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    end = last_complete_hour_end()
    seed(db_url, end)
    page = tmp_path / "www" / "report.html"
    page.parent.mkdir()
    result = cli("metrics", "report", "--since", "3h", "--html", str(page))
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = result.one("metrics_report")
    assert [p["total"] for p in summary["series"]] == [5, 0, 3]
    text = visible_text(page.read_text())
    first = (end - 3 * H).strftime("%Y-%m-%d %H:00")
    assert f"busiest hour 5 {first}" in text
    assert "8 3 failed (37.5 %)" in text
    # Above 10 %: the first hour (1 of 5) and the last (2 of 3); the empty hour has no rate.
    assert "periods above the failure-rate threshold (10.0 %) 2 of 3" in text
    assert sorted(p.name for p in page.parent.iterdir()) == ["report.html"]


def test_report_page_in_a_browser(sqlite_cli: Cli, sqlite_url: str, tmp_path: Path) -> None:
    end = last_complete_hour_end()
    seed(sqlite_url, end)
    page = tmp_path / "report.html"
    assert sqlite_cli("metrics", "report", "--since", "3h", "--html", str(page)).exit_code == 0
    shown = show(page, tmp_path / "chromium")
    assert shown.requests == []
    assert f"busiest hour 5 {(end - 3 * H).strftime('%Y-%m-%d %H:00')}" in shown.text
    assert shown.dom.count('<rect class="bar"') == 2


def test_an_empty_export_table_gives_a_page_that_says_so(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    Database(sqlite_url).engine.dispose()
    insert_exports(sqlite_url, [])
    page = tmp_path / "report.html"
    result = sqlite_cli("metrics", "report", "--html", str(page))
    assert result.exit_code == 0 and result.one("metrics_report")["total"] == 0
    html = page.read_text()
    assert "No exports in this range." in visible_text(html) and "<svg" not in html


@pytest.mark.parametrize("where", ["missing", "file", "unwritable"])
def test_a_page_path_that_cannot_take_the_page_is_a_usage_error(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, where: str
) -> None:
    seed(sqlite_url, last_complete_hour_end())
    if where == "missing":
        page = tmp_path / "no-such-dir" / "report.html"
    elif where == "file":
        (tmp_path / "a-file").write_text("x")
        page = tmp_path / "a-file" / "report.html"
    else:
        page = Path("/sys") / "report.html" if os.geteuid() == 0 else tmp_path / "ro" / "r.html"
        if os.geteuid() != 0:
            page.parent.mkdir()
            page.parent.chmod(0o555)
    result = sqlite_cli("metrics", "report", "--html", str(page))
    assert result.exit_code == 64
    error = result.one("error")
    assert error["error"]["kind"] == "usage" and "--html" in error["error"]["message"]
    assert not result.of_type("metrics_report")
    assert not page.exists()
