"""The pages as a real browser shows them: headless chromium, nothing fetched."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from browser import show
from page_views import HOSTILE, NOW, report_view, status_view

from opsctl.adapters.pages import (
    FailedRunLine,
    JobLine,
    render_report_page,
    render_status_page,
    write_page,
)

pytestmark = pytest.mark.slow


def test_the_browser_check_sees_a_request_when_a_page_makes_one(tmp_path: Path) -> None:
    page = tmp_path / "leaky.html"
    page.write_text('<html><body>x<img src="http://127.0.0.1:9/pixel.png"></body></html>')
    assert show(page, tmp_path / "chromium").requests == ["http://127.0.0.1:9/pixel.png"]


def test_status_page_in_a_browser(tmp_path: Path) -> None:
    view = status_view(
        jobs=[JobLine("metrics.aggregate", NOW - timedelta(minutes=1), "ok", 0, NOW),
              JobLine(HOSTILE, NOW - timedelta(days=2), "error", 3, None, overdue=True)],
        failed_runs=[FailedRunLine(HOSTILE, NOW - timedelta(days=2), 3, "error",
                                   "storage_unavailable", f"bucket {HOSTILE} unreachable")],
    )
    page = tmp_path / "status.html"
    write_page(page, render_status_page(view))
    shown = show(page, tmp_path / "chromium", width=390)
    assert shown.requests == []
    assert "<script>alert(1)" not in shown.dom  # text, never an element
    text = shown.text
    assert text.startswith("opsctl status CRITICAL web-1")
    assert "metrics.aggregate 1m 00s ago 2026-11-26 11:59:30 UTC ok 0" in text
    assert f"{HOSTILE} 2d 00h ago 2026-11-24 12:00:30 UTC error 3 never OVERDUE" in text
    assert f"storage_unavailable: bucket {HOSTILE} unreachable" in text
    assert "export_failure_rate CRITICAL" in text


def test_report_page_of_a_month_in_a_browser(tmp_path: Path) -> None:
    totals = [100 + (i * 37) % 50 for i in range(720)]
    totals[500] = 987
    page = tmp_path / "report.html"
    write_page(page, render_report_page(report_view(totals, failed=[t // 20 for t in totals])))
    assert page.stat().st_size < 1_000_000
    shown = show(page, tmp_path / "chromium")
    assert shown.requests == []
    # 2026-11-25 12:00 + 500 h = 2026-12-16 08:00
    assert "busiest hour 987 2026-12-16 08:00" in shown.text
    assert "2026-12-16 08:00 987 938 49 5.0 %" in shown.text
    assert shown.dom.count('<rect class="bar"') == 720


def test_empty_pages_in_a_browser_say_so(tmp_path: Path) -> None:
    status = tmp_path / "status.html"
    write_page(status, render_status_page(status_view(
        jobs=[JobLine("metrics.aggregate")], open_alerts=[], failure_rate=None, completed=0,
        failed=0, pending_log_rows=0, pending_files=0, failed_runs=[], state="ok",
        message="all jobs on schedule, no open alert")))
    report = tmp_path / "report.html"
    write_page(report, render_report_page(report_view([0] * 24)))
    assert "Nothing recorded yet." in show(status, tmp_path / "one").text
    shown = show(report, tmp_path / "two")
    assert "No exports in this range." in shown.text and "<svg" not in shown.dom
