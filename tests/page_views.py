"""Crafted status and report views for the page tests (renderer, browser, CLI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opsctl.adapters.pages import (
    AlertLine,
    FailedRunLine,
    JobLine,
    PeriodPoint,
    ReportView,
    StatusView,
)

NOW = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>[/x][bold]"


def status_view(**overrides: object) -> StatusView:
    fields: dict[str, object] = dict(
        generated_at=NOW, host="web-1", state="critical", message="files.cleanup is overdue",
        jobs=[JobLine("metrics.aggregate", NOW - timedelta(minutes=1), "ok", 0,
                      NOW - timedelta(minutes=1)),
              JobLine("files.cleanup", NOW - timedelta(days=2), "error", 3,
                      NOW - timedelta(days=3), overdue=True),
              JobLine("logs.cleanup")],
        open_alerts=[AlertLine("export_failure_rate", NOW - timedelta(hours=2))],
        failure_rate=0.125, completed=21, failed=3, pending_log_rows=12345, pending_files=42,
        failed_runs=[FailedRunLine("files.cleanup", NOW - timedelta(days=2), 3, "error",
                                   "storage_unavailable", "bucket exports unreachable")],
        threshold=0.10, warning=0.05,
    )
    fields.update(overrides)
    return StatusView(**fields)  # type: ignore[arg-type]


def report_view(totals: list[int], failed: list[int] | None = None) -> ReportView:
    start = datetime(2026, 11, 25, 12, tzinfo=UTC)
    failed = failed or [0] * len(totals)
    series = [PeriodPoint(start + timedelta(hours=i), t, t - f, f, f / t if t else None,
                          1500.0 + i if t else None)
              for i, (t, f) in enumerate(zip(totals, failed, strict=True))]
    return ReportView(NOW, "web-1", "hourly", start, start + timedelta(hours=len(totals)),
                      series, 0.10)
