"""``opsctl metrics aggregate`` through the real entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select
from support import Cli, export_row, insert_exports

from opsctl.adapters.db import locks, tables
from opsctl.adapters.db.database import Database
from opsctl.events import COMMON_FIELDS

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
INSIDE = START + timedelta(minutes=20)
WINDOW = ("--since", "2026-11-20T09:00:00Z", "--until", "2026-11-20T10:00:00Z")


def rows() -> list[dict[str, Any]]:
    """17 completed (1.2 s, 200 kB each), 3 failed, 1 queued: 85.0 %, 1.2 s, 3.4 MB."""
    done = [
        export_row(
            format="json" if i < 12 else "csv",
            duration_ms=1200,
            file_size_bytes=200_000,
            created_at=INSIDE,
        )
        for i in range(17)
    ]
    failed = [
        export_row(
            format="json",
            status="failed",
            error_type=kind,
            duration_ms=10,
            file_size_bytes=None,
            created_at=INSIDE,
        )
        for kind in ("timeout", "timeout", "quota")
    ]
    other = [
        export_row(format="csv", status="queued", duration_ms=None, created_at=START),
        export_row(format="json", duration_ms=99_999, created_at=END),  # outside
    ]
    return done + failed + other


def seed(url: str, batch: list[dict[str, Any]], **kwargs: Any) -> None:
    Database(url).engine.dispose()  # creates the SQLite directory
    insert_exports(url, batch, **kwargs)


def rollups(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(tables.metric_rollups.name):
                return []
            t = tables.metric_rollups
            return [
                tuple(r)
                for r in conn.execute(
                    select(t.c.period, t.c.window_start, t.c.window_end, t.c.total_exports)
                )
            ]
    finally:
        engine.dispose()


def test_summary_event_carries_every_contract_field(cli: Cli, db_url: str) -> None:
    seed(db_url, rows())
    result = cli("metrics", "aggregate", *WINDOW)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [e["type"] for e in result.events] == ["aggregated_metrics"]
    event = result.one("aggregated_metrics")
    assert set(COMMON_FIELDS) <= set(event) and "status" not in event
    assert (event["job"], event["level"], event["state"], event["exit_code"]) == (
        "metrics.aggregate",
        "info",
        "ok",
        0,
    )
    expected = {
        "period": "hourly",
        "window_start": "2026-11-20T09:00:00.000Z",
        "window_end": "2026-11-20T10:00:00.000Z",
        "total_exports": 21,
        "completed": 17,
        "failed": 3,
        "success_rate": 0.85,
        "failure_rate": 0.15,
        "avg_duration_ms": 1200.0,
        "p50_duration_ms": 1200.0,
        "p95_duration_ms": 1200.0,
        "p99_duration_ms": 1200.0,
        "avg_duration_by_format": {"csv": 1200.0, "json": 1200.0},
        "by_format": {
            "csv": {
                "total": 6,
                "completed": 5,
                "failed": 0,
                "success_rate": 1.0,
                "avg_duration_ms": 1200.0,
                "p95_duration_ms": 1200.0,
                "total_file_size_bytes": 1_000_000,
            },
            "json": {
                "total": 15,
                "completed": 12,
                "failed": 3,
                "success_rate": 0.8,
                "avg_duration_ms": 1200.0,
                "p95_duration_ms": 1200.0,
                "total_file_size_bytes": 2_400_000,
            },
        },
        "total_file_size_bytes": 3_400_000,
        "avg_file_size_bytes": 200_000.0,
        "exports_per_hour": 21.0,
        "top_error_types": [
            {"error_type": "timeout", "count": 2},
            {"error_type": "quota", "count": 1},
        ],
        "dry_run": False,
        "stored": False,
    }
    assert {key: event[key] for key in expected} == expected


def test_crossed_warnings_exit_1_with_one_event_each(cli: Cli, db_url: str) -> None:
    seed(db_url, rows())
    result = cli(
        "metrics",
        "aggregate",
        *WINDOW,
        env={
            "OPSCTL_METRICS__WARN_AVG_DURATION_MS": "1000",
            "OPSCTL_METRICS__WARN_EXPORTS_PER_HOUR": "20",
        },
    )
    assert result.exit_code == 1
    warnings = result.of_type("metrics_threshold_warning")
    assert [(w["metric"], w["value"], w["threshold"], w["level"]) for w in warnings] == [
        ("avg_duration_ms", 1200.0, 1000, "warning"),
        ("exports_per_hour", 21.0, 20, "warning"),
    ]
    summary = result.one("aggregated_metrics")
    assert (summary["state"], summary["exit_code"]) == ("warning", 1)


def test_an_empty_window_exits_0_with_null_rates(cli: Cli, db_url: str) -> None:
    seed(db_url, rows())
    result = cli(
        "metrics", "aggregate", "--since", "2026-11-20T11:00:00", "--until", "2026-11-20T12:00:00"
    )
    assert result.exit_code == 0
    event = result.one("aggregated_metrics")
    assert (
        event["total_exports"],
        event["success_rate"],
        event["failure_rate"],
        event["avg_duration_ms"],
        event["p95_duration_ms"],
        event["state"],
    ) == (0, None, None, None, None, "ok")


def test_store_twice_updates_the_one_rollup_row(cli: Cli, db_url: str) -> None:
    seed(db_url, rows())
    first = cli("metrics", "aggregate", *WINDOW, "--store")
    assert (first.exit_code, first.one("aggregated_metrics")["stored"]) == (0, True)
    seed(db_url, [export_row(created_at=INSIDE)])
    second = cli("metrics", "aggregate", *WINDOW, "--store")
    assert second.exit_code == 0
    assert rollups(db_url) == [("hourly", START, END, 22)]


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_dry_run_stores_nothing(cli: Cli, db_url: str, how: str) -> None:
    seed(db_url, rows())
    args = ["--dry-run"] if how == "flag" else []
    env = {"OPSCTL_DRY_RUN": "1"} if how == "environment" else {}
    result = cli("metrics", "aggregate", *WINDOW, "--store", *args, env=env)
    assert result.exit_code == 0
    event = result.one("aggregated_metrics")
    assert (event["dry_run"], event["stored"], event["total_exports"]) == (True, False, 21)
    assert rollups(db_url) == []


def test_config_period_names_an_aligned_day(cli: Cli, db_url: str) -> None:
    seed(db_url, rows())
    result = cli(
        "metrics",
        "aggregate",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-21",
        env={"OPSCTL_METRICS__PERIOD": "daily"},
    )
    event = result.one("aggregated_metrics")
    assert (event["period"], event["total_exports"], event["exports_per_hour"]) == (
        "daily",
        22,
        22 / 24,
    )


def test_remapped_table_and_columns_from_the_environment(cli: Cli, db_url: str) -> None:
    columns = {"created_at": "inserted_at", "duration_ms": "took_ms"}
    seed(db_url, rows(), table="export_events", columns=columns)
    result = cli(
        "metrics",
        "aggregate",
        *WINDOW,
        env={
            "OPSCTL_SOURCE__TABLE": "export_events",
            "OPSCTL_SOURCE__COLUMNS__CREATED_AT": "inserted_at",
            "OPSCTL_SOURCE__COLUMNS__DURATION_MS": "took_ms",
        },
    )
    assert result.exit_code == 0, result.stdout
    event = result.one("aggregated_metrics")
    assert (event["total_exports"], event["avg_duration_ms"]) == (21, 1200.0)


def test_a_missing_source_table_exits_78_with_an_error_event(cli: Cli, db_url: str) -> None:
    seed(db_url, rows(), table="something_else")
    result = cli("metrics", "aggregate", *WINDOW)
    assert result.exit_code == 78
    [event] = result.events
    assert (event["type"], event["state"], event["exit_code"]) == ("error", "error", 78)
    assert event["error"]["kind"] == "source_missing"
    assert "table export_logs does not exist" in event["error"]["message"]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--window", "1h", "--since", "2026-11-20T09:00:00Z"], "--window cannot be combined"),
        (["--until", "2026-11-20T10:00:00Z"], "--until needs --since"),
        (["--since", "yesterday"], "--since"),
        (["--since", "2026-11-20T10:00:00Z", "--until", "2026-11-20T09:00:00Z"], "before"),
        (["--window", "5"], "--window"),
        (["--window", "0s"], "--window"),
        (["--period", "weekly"], "weekly"),
        (["--bogus"], "bogus"),
    ],
)
def test_bad_flags_are_usage_errors(sqlite_cli: Cli, args: list[str], needle: str) -> None:
    result = sqlite_cli("metrics", "aggregate", *args)
    assert result.exit_code == 64
    [event] = result.events
    assert (event["type"], event["error"]["kind"], event["exit_code"]) == ("error", "usage", 64)
    assert needle in event["error"]["message"]


def test_text_output_reads_as_rates_durations_and_sizes(sqlite_cli: Cli, sqlite_url: str) -> None:
    seed(sqlite_url, rows())
    result = sqlite_cli("metrics", "aggregate", *WINDOW, output="text", env={"COLUMNS": "100"})
    assert result.exit_code == 0
    out = result.stdout
    for text in ("85.0 %", "15.0 %", "1.2 s", "3.4 MB", "200.0 kB", "timeout", "quota"):
        assert text in out, text
    json_row = next(line for line in out.splitlines() if " json " in line)
    assert "15" in json_row and "80.0 %" in json_row and "2.4 MB" in json_row


def test_store_takes_the_job_lock_and_a_plain_run_does_not(cli: Cli, db_url: str) -> None:
    seed(db_url, rows())
    db = Database(db_url)
    try:
        with locks.job_lock(db, "metrics.aggregate"):
            storing = cli("metrics", "aggregate", *WINDOW, "--store")
            reading = cli("metrics", "aggregate", *WINDOW)
    finally:
        db.dispose()
    assert storing.exit_code == 75
    skipped = storing.one("job_skipped")
    assert (skipped["state"], skipped["exit_code"]) == ("skipped", 75)
    assert storing.of_type("aggregated_metrics") == []
    assert reading.exit_code == 0
    assert rollups(db_url) == []


def test_a_bad_flag_is_64_even_when_the_config_is_broken_too(sqlite_cli: Cli) -> None:
    broken = {"OPSCTL_METRICS__PERIOD": "weekly"}
    both = sqlite_cli("metrics", "aggregate", "--until", "2026-11-20T10:00:00Z", env=broken)
    config_only = sqlite_cli("metrics", "aggregate", *WINDOW, env=broken)
    assert (both.exit_code, both.events[0]["error"]["kind"]) == (64, "usage")
    assert (config_only.exit_code, config_only.events[0]["error"]["kind"]) == (78, "config")
    assert "metrics.period" in config_only.events[0]["error"]["message"]
