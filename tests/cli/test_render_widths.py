"""Text views at 60, 80 and 120 columns: no line wider than the terminal, and the headers
of the columns that matter whole (no ``s…``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from opsctl.cli import render
from opsctl.cli.commands import files, health, metrics, runs  # noqa: F401  (registers views)
from opsctl.exit_codes import ExitCode
from opsctl.jobs import runs_stats
from opsctl.jobs.result import JobResult

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LONG = "storage_unavailable: S3 endpoint unreachable: connection refused by 127.0.0.1:9 " * 2


def draw(result: JobResult, width: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, highlight=False, soft_wrap=False)
    render._RENDERERS[result.summary_type](console, result)
    return out.getvalue().splitlines()


def header(lines: list[str], first: str) -> list[str]:
    (line,) = [line for line in lines if line.split()[:1] == [first]]
    return line.split()


def runs_list() -> JobResult:
    rows = [{"job": job, "started_at": NOW - timedelta(minutes=i), "state": state,
             "duration_ms": 1234 * i, "job_exit_code": code, "summary": "x=1",
             "details": {"deleted_count": 12, "missing_count": 1, "failed_count": 0},
             **({"error": {"kind": "storage_unavailable", "message": LONG}} if code == 3 else {})}
            for i, (job, state, code) in enumerate([("failure-rate.check", "alert", 2),
                                                    ("files.cleanup", "error", 3),
                                                    ("files.cleanup", "completed", 0)])]
    return JobResult("job_runs_listed", "3 recorded runs", "ok", ExitCode.OK, {},
                     extra={"runs": rows})


def runs_stats_result() -> JobResult:
    rules = runs_stats.AlertRules(failure_rate=0.5, min_runs=5, consecutive_failures=3,
                                  max_avg_duration=timedelta(minutes=5))
    jobs = [{"job": "failure-rate.check", "state": "alert", "runs": 288, "failed": 200,
             "success_rate": 0.3055, "avg_duration_ms": 812.0, "p95_duration_ms": 1320.0,
             "last_run_at": NOW - timedelta(minutes=4), "last_state": "error",
             "last_success_at": NOW - timedelta(hours=26), "consecutive_failures": 17,
             "reasons": [runs_stats.FAILURE_RATE, runs_stats.CONSECUTIVE_FAILURES]},
            {"job": "metrics.aggregate", "state": "ok", "runs": 24, "failed": 0,
             "success_rate": 1.0, "avg_duration_ms": 250.0, "p95_duration_ms": 400.0,
             "last_run_at": NOW - timedelta(minutes=40), "last_state": "ok",
             "last_success_at": NOW - timedelta(minutes=40), "consecutive_failures": 0,
             "reasons": []}]
    return JobResult("job_run_stats_summary", "1 of 2 jobs in alert over the last 7d: "
                     "failure-rate.check", "alert", ExitCode.CRITICAL, {"window_end": NOW},
                     extra={"jobs": jobs, "rules": rules})


def probe() -> JobResult:
    checks = [
        {"check": "database", "kind": "database", "state": "ok", "latency_ms": 3},
        {"check": "disk", "kind": "disk", "state": "warning", "latency_ms": 1,
         "detail": {"free_percent": 7.25},
         "error": {"kind": "threshold", "message": "7.2 % free is below min_free_percent 10"}},
        {"check": "queue-depth", "kind": "sql", "state": "ok", "latency_ms": 12,
         "detail": {"value": 42.0}},
        {"check": "aggregate-fresh", "kind": "freshness", "state": "ok", "latency_ms": 4,
         "detail": {"age_s": 1500}},
        {"check": "api", "kind": "http", "state": "critical", "latency_ms": 250,
         "detail": {"http_status": 503}, "error": {"kind": "status", "message": LONG}},
    ]
    return JobResult("health_probe", "unhealthy: 2 of 5 checks failed (disk, api)",
                     "unhealthy", ExitCode.CRITICAL,
                     {"checks_total": 5, "checks_failed": 2, "duration_ms": 251},
                     extra={"checks": checks})


def dry_files() -> JobResult:
    sample = [{"file_path": f"2026/11/{i:02d}/" + "a-rather-long-export-name-" * 3 + ".jsonl",
               "size": 1_234_567, "state": "deleted"} for i in range(3)]
    return JobResult("export_file_cleanup_complete", "files cleanup dry run: would delete 3 "
                     "of 3 expired files (3.7 MB), 0 missing, 0 failed", "dry_run",
                     ExitCode.OK, {"dry_run": True, "candidates": 3, "deleted_count": 3,
                                   "missing_count": 0, "failed_count": 0,
                                   "bytes_freed": 3_703_701}, extra={"sample": sample})


def report() -> JobResult:
    series = [{"window_start": f"2026-11-{1 + i // 24:02d}T{i % 24:02d}:00:00.000Z",
               "total": (i * 37) % 150, "completed": 100, "failed": i % 9,
               "failure_rate": (i % 9) / 100, "p95_duration_ms": 1000.0 + i} for i in range(720)]
    return JobResult("metrics_report", "720 hourly periods", "ok", ExitCode.OK,
                     {"period": "hourly", "periods": 720, "series": series, "total": 1,
                      "failed": 1, "failure_rate": 0.04, "failure_rate_threshold": 0.1,
                      "window_start": series[0]["window_start"],
                      "window_end": "2026-12-01T00:00:00.000Z", "stored_periods": 700,
                      "computed_periods": 20})


WIDTHS = [60, 80, 120]


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_list(width: int) -> None:
    lines = draw(runs_list(), width)
    assert max(map(len, lines)) <= width
    assert header(lines, "started")[:4] == ["started", "(UTC)", "job", "state"]
    assert "summary" in header(lines, "started")
    text = " ".join(" ".join(lines).split())
    assert "deleted 12, missing 1, failed 0" in text  # words, not key=value
    assert "x=1" not in text
    # The long error folds onto more lines but is all there.
    assert "connection refused by" in text and lines[0] == "3 recorded runs"


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_stats(width: int) -> None:
    lines = draw(runs_stats_result(), width)
    assert max(map(len, lines)) <= width
    cols = header(lines, "job")
    assert {"job", "state", "runs", "ok", "last"} <= set(cols)
    row = next(line for line in lines if line.startswith("failure-rate.check ")).split()
    assert row[:5] == ["failure-rate.check", "alert", "288", "31", "%"]
    words = " ".join(" ".join(lines).split())
    assert "alert failure-rate.check: last 17 runs failed (>= 3 in a row)" in words
    if width >= 80:
        assert {"avg", "ok", "last"} <= set(cols) and cols.count("last") == 2
    if width >= 120:
        assert {"p95", "streak", "reasons"} <= set(cols)


@pytest.mark.parametrize("width", WIDTHS)
def test_health_probe(width: int) -> None:
    lines = draw(probe(), width)
    assert max(map(len, lines)) <= width
    assert lines[0] == "unhealthy: 2 of 5 checks failed (disk, api)"
    cols = header(lines, "check")
    assert {"check", "state", "value", "reason"} <= set(cols)
    text = " ".join(lines)
    for value in ("7.2 % free", "42", "25m 00s ago", "HTTP 503"):
        assert value in text, (value, text)


@pytest.mark.parametrize("width", WIDTHS)
def test_files_dry_run(width: int) -> None:
    lines = draw(dry_files(), width)
    assert max(map(len, lines)) <= width
    assert lines[0].startswith("files cleanup dry run: would delete 3")
    assert header(lines, "file_path") == ["file_path", "size", "would", "be"]
    assert " ".join(" ".join(lines).split()).count(".jsonl") == 3


@pytest.mark.parametrize("width", WIDTHS)
def test_metrics_report(width: int) -> None:
    lines = draw(report(), width)
    assert max(map(len, lines)) <= width
    assert sum("│" in line or "┤" in line for line in lines) == 12  # 3 charts of 4 rows
