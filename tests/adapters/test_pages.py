"""The page renderer on crafted views: escaping, self-containment, charts, atomic writes."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser import visible_text
from page_views import HOSTILE, NOW, report_view, status_view

from opsctl.adapters.pages import (
    AlertLine,
    FailedRunLine,
    JobLine,
    ReportView,
    StatusView,
    charts,
    check_page_path,
    render_report_page,
    render_status_page,
    write_page,
)
from opsctl.errors import UsageError

# --- the status page -------------------------------------------------------------------


def test_status_page_shows_every_job_state_alert_and_failed_run_as_text() -> None:
    text = visible_text(render_status_page(status_view()))
    assert "CRITICAL" in text and "files.cleanup is overdue" in text
    assert re.search(r"files\.cleanup 2d 00h ago 2026-11-24 12:00:30 UTC error 3 "
                     r"3d 00h ago 2026-11-23 12:00:30 UTC OVERDUE", text)
    assert re.search(r"metrics\.aggregate 1m 00s ago .* ok 0 1m 00s ago .* not overdue", text)
    assert "logs.cleanup never — — never not yet due" in text
    assert "export_failure_rate CRITICAL 2h 00m ago" in text
    assert "12.5 % 3 failed of 24 finished (threshold 10.0 %)" in text
    assert "12,345" in text and "42" in text
    assert "storage_unavailable: bucket exports unreachable" in text


def test_status_page_is_self_contained_and_refreshes_every_minute() -> None:
    html = render_status_page(status_view())
    assert '<meta http-equiv="refresh" content="60">' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert_self_contained(html)


def assert_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"\b(src|href|srcset|poster|action|data)\s*=", html, re.IGNORECASE)
    assert "url(" not in html and "@import" not in html and "@font-face" not in html
    # The only URL is the SVG namespace, which is a name, not a request.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_job_names_and_errors_are_escaped_not_markup() -> None:
    view = status_view(
        message=HOSTILE,
        jobs=[JobLine(HOSTILE, NOW, "ok", 0, NOW)],
        open_alerts=[AlertLine(HOSTILE, NOW)],
        failed_runs=[FailedRunLine(HOSTILE, NOW, 78, "error", HOSTILE, HOSTILE)],
        findings=[HOSTILE],
    )
    html = render_status_page(view)
    assert "<script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;[/x][bold]") == 7
    assert visible_text(html).count(HOSTILE) == 7


def test_secrets_are_redacted_from_messages_and_errors() -> None:
    view = status_view(message="connect to postgresql://app:hunter2@db/x failed",
                       failed_runs=[FailedRunLine("logs.cleanup", NOW, 3, "error",
                                                  "database_unavailable", "hunter2 refused")])
    html = render_status_page(view, redact=lambda s: s.replace("hunter2", "***"))
    assert "hunter2" not in html and html.count("***") == 2


def test_an_empty_database_says_so() -> None:
    view = StatusView(NOW, "web-1", "ok", "all jobs on schedule, no open alert",
                      jobs=[JobLine("metrics.aggregate"), JobLine("health.probe")])
    assert view.empty
    text = visible_text(render_status_page(view))
    assert "Nothing recorded yet." in text
    assert "no finished exports" in text and "No failed run in the run history." in text
    assert not status_view().empty


def test_status_view_from_summary_fields_and_event_text() -> None:
    fields = {
        "jobs": [{"job": "files.cleanup", "last_run_at": "2026-11-24T12:00:30.000Z",
                  "last_state": "error", "last_exit_code": 3,
                  "last_success_at": datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC),
                  "overdue": True, "cron": "0 2 * * *"},
                 {"job": "logs.restore", "last_run_at": None, "last_state": None,
                  "last_exit_code": None, "last_success_at": None, "overdue": False,
                  "cron": ""}],
        "open_alerts": [{"name": "export_failure_rate", "opened_at": "2026-11-26T10:00:30Z"}],
        "failure_rate": None, "completed": 0, "failed": 0, "failure_window": "1h",
        "pending_log_rows": 7, "pending_files": 0, "findings": ["files.cleanup is overdue"],
    }
    failed = [{"job": "files.cleanup", "started_at": "2026-11-24T12:00:30Z", "exit_code": 3,
               "state": "error", "error_kind": "storage_unavailable", "error_message": "gone"}]
    view = StatusView.from_summary(fields, state="critical", message="m", generated_at=NOW,
                                   host="h", failed_runs=failed, threshold=0.1, warning=0.05)
    first, second = view.jobs
    assert first == JobLine("files.cleanup", datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC),
                            "error", 3, datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC),
                            overdue=True)
    assert second.scheduled is False and second.last_run_at is None
    assert view.open_alerts == [AlertLine("export_failure_rate",
                                          datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC))]
    assert view.failed_runs[0].error_message == "gone" and view.pending_log_rows == 7
    assert "no finished exports" in visible_text(render_status_page(view))


# --- the report page -------------------------------------------------------------------


def test_report_page_states_the_numbers_behind_its_charts() -> None:
    view = report_view([10, 40, 0, 25], failed=[1, 6, 0, 2])
    text = visible_text(render_report_page(view))
    assert "75 9 failed (12.0 %)" in text
    assert "busiest hour 40 2026-11-25 13:00" in text
    # 6 of 40 (15 %) is above 10 %; 1 of 10 (exactly 10 %) is not.
    assert "1 of 4" in text and "2026-11-25 13:00: 15.0 % (6 of 40)" in text
    assert "2026-11-25 14:00 0 0 0 — —" in text
    assert "2026-11-25 15:00 25 23 2 8.0 % 1.5 s" in text


def test_report_page_draws_a_bar_per_period_and_the_threshold() -> None:
    html = render_report_page(report_view([10, 40, 0, 25], failed=[1, 6, 0, 2]))
    assert html.count('<rect class="bar"') == 3  # the empty period has no bar
    assert html.count('<line class="threshold"') == 1
    assert "threshold 10.0 %" in html
    assert_self_contained(html)


def test_an_empty_range_says_so_instead_of_empty_charts() -> None:
    html = render_report_page(report_view([0] * 24))
    assert "No exports in this range." in visible_text(html)
    assert "<svg" not in html


def test_a_month_of_hours_stays_under_a_megabyte() -> None:
    totals = [1000 + (i * 7919) % 500 for i in range(720)]
    html = render_report_page(report_view(totals, failed=[t // 9 for t in totals]))
    assert len(html.encode()) < 1_000_000
    assert html.count('<rect class="bar"') == 720


def test_report_view_from_summary_fields() -> None:
    fields = {"period": "daily", "window_start": "2026-11-20T00:00:00.000Z",
              "window_end": "2026-11-22T00:00:00.000Z", "failure_rate_threshold": 0.2,
              "series": [{"window_start": "2026-11-20T00:00:00.000Z", "total": 5,
                          "completed": 4, "failed": 1, "failure_rate": 0.2,
                          "p95_duration_ms": 900.0},
                         {"window_start": "2026-11-21T00:00:00.000Z", "total": 0,
                          "completed": 0, "failed": 0, "failure_rate": None,
                          "p95_duration_ms": None}]}
    view = ReportView.from_summary(fields, generated_at=NOW, host="h")
    assert (view.period, view.total, view.failure_rate, view.failure_rate_threshold) == (
        "daily", 5, 0.2, 0.2)
    assert view.busiest is not None and view.busiest.window_start == datetime(
        2026, 11, 20, tzinfo=UTC)
    assert view.above_threshold == []  # 0.2 is not above 0.2
    assert "busiest day 5 2026-11-20" in visible_text(render_report_page(view))


# --- charts ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "ceiling"), [
    (0, 1.0), (0.07, 0.1), (0.1, 0.1), (0.12, 0.2), (0.24, 0.25), (3, 5.0), (40, 50.0),
    (110, 200.0), (1000, 1000.0), (2400, 2500.0),
])
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def test_bar_heights_are_proportional_to_a_nice_top() -> None:
    svg = charts.bar_chart([10.0, 40.0, 0.0, 25.0], ["a", "b", "c", "d"], title="t",
                           fmt=lambda v: f"{v:g}")
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"', svg)]
    # top is 50; the plot is PLOT_H units tall
    assert heights == pytest.approx([charts.PLOT_H * v / 50 for v in (10, 40, 25)], abs=0.01)
    assert "<title>b: 40</title>" in svg


def test_a_missing_value_breaks_the_line_and_a_lone_value_is_a_dot() -> None:
    svg = charts.line_chart([0.1, 0.2, None, 0.05, None, 0.3, 0.1], list("abcdefg"),
                            title="t", fmt=str)
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 1


def test_chart_text_is_escaped() -> None:
    svg = charts.bar_chart([1.0], [HOSTILE], title=HOSTILE, fmt=str, unit=HOSTILE)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# --- writing the page --------------------------------------------------------------------


def test_the_page_replaces_the_old_one_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "status.html"
    target.write_text("old page")
    write_page(target, "<html>new page</html>")
    assert target.read_text() == "<html>new page</html>"
    assert (target.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["status.html"]


def test_a_failed_write_leaves_neither_a_page_nor_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "status.html"
    target.mkdir()
    (target / "keep").write_text("x")  # a non-empty directory cannot be replaced by a file
    with pytest.raises(UsageError, match="cannot write the page"):
        write_page(target, "<html></html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.html"]
    assert target.is_dir()


def test_a_directory_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist") as raised:
        check_page_path(tmp_path / "missing" / "status.html")
    assert raised.value.exit_code == 64


def test_a_directory_given_as_the_page_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        check_page_path(tmp_path)


def unwritable_directory(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores permission bits)."""
    if os.geteuid() == 0:
        return Path("/sys")
    path = tmp_path / "read-only"
    path.mkdir()
    path.chmod(0o555)
    return path


def test_a_directory_that_is_not_writable_is_a_usage_error(tmp_path: Path) -> None:
    directory = unwritable_directory(tmp_path)
    with pytest.raises(UsageError, match="cannot write in"):
        check_page_path(directory / "status.html")
    assert not (directory / "status.html").exists()


# --- the compiled-template cache -------------------------------------------------------


def test_compiled_templates_are_cached_and_give_the_same_page(tmp_path: Path) -> None:
    from opsctl.adapters.pages import render

    cache = tmp_path / "cache" / "templates"
    first = render_status_page(status_view(), cache_dir=cache)
    stored = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(stored) == 3  # the status page, its base and the stylesheet it includes
    render.environment.cache_clear()  # as in a new process
    assert render_status_page(status_view(), cache_dir=cache) == first
    # Read from the cache, not compiled and written again.
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stored


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    html = render_report_page(report_view([3, 4]), cache_dir=tmp_path / "a-file" / "cache")
    assert "busiest hour" in visible_text(html)
    html = render_report_page(report_view([3, 4]), cache_dir=Path("/sys/opsctl-cache")
                              if os.geteuid() == 0 else tmp_path / "a-file" / "x")
    assert "busiest hour" in visible_text(html)
