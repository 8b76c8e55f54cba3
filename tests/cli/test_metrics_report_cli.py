"""``opsctl metrics report`` through the real entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select
from support import Cli, export_row, insert_exports, isolated_env

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.events import COMMON_FIELDS

H = timedelta(hours=1)


def this_hour() -> datetime:
    """The start of the current hour, away from its end so a run cannot straddle it."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 50:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def crafted(end: datetime) -> list[dict[str, Any]]:
    """Three hours before ``end``: 4 done + 1 failed + 1 queued, nothing, 2 done + 2 failed."""
    first, last = end - 3 * H, end - H
    return [
        *(export_row(duration_ms=d, created_at=first + timedelta(minutes=i))
          for i, d in enumerate((400, 100, 300, 200))),
        export_row(status="failed", error_type="timeout", created_at=first),
        export_row(status="queued", duration_ms=None, created_at=first + 59 * timedelta(minutes=1)),
        export_row(duration_ms=1000, created_at=last),
        export_row(duration_ms=3000, created_at=last + timedelta(minutes=30)),
        export_row(status="failed", duration_ms=7, created_at=last),
        export_row(status="failed", duration_ms=9, created_at=end - timedelta(seconds=1)),
        export_row(duration_ms=99_999, created_at=end),  # the current hour: not complete
        export_row(duration_ms=99_999, created_at=first - timedelta(seconds=1)),  # before
    ]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seed(url: str, rows: list[dict[str, Any]], table: str = "export_logs") -> None:
    Database(url).engine.dispose()  # creates the SQLite directory
    insert_exports(url, rows, table=table)


def table_names(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_series_per_hour_from_the_table_without_opsctl_tables(cli: Cli, db_url: str) -> None:
    end = this_hour()
    seed(db_url, crafted(end))
    result = cli("metrics", "report", "--since", "3h")
    assert result.exit_code == 0, result.stdout + result.stderr
    event = result.one("metrics_report")
    assert [e["type"] for e in result.events] == ["metrics_report"]
    assert set(COMMON_FIELDS) <= set(event) and "status" not in event
    assert (event["job"], event["state"], event["exit_code"], event["period"]) == (
        "metrics.report", "ok", 0, "hourly")
    assert event["series"] == [
        {"window_start": stamp(end - 3 * H), "total": 6, "completed": 4, "failed": 1,
         "failure_rate": 0.2, "p95_duration_ms": 385.0},
        {"window_start": stamp(end - 2 * H), "total": 0, "completed": 0, "failed": 0,
         "failure_rate": None, "p95_duration_ms": None},
        {"window_start": stamp(end - H), "total": 4, "completed": 2, "failed": 2,
         "failure_rate": 0.5, "p95_duration_ms": 2900.0},
    ]
    assert (event["window_start"], event["window_end"]) == (stamp(end - 3 * H), stamp(end))
    assert (event["stored_periods"], event["computed_periods"]) == (0, 3)
    assert event["failure_rate_threshold"] == 0.10
    # Read-only: no opsctl table was created, so no run was recorded either.
    assert table_names(db_url) == ["export_logs"]


def test_daily_period_from_config(cli: Cli, db_url: str) -> None:
    end = this_hour().replace(hour=0)
    seed(db_url, [export_row(duration_ms=10, created_at=end - timedelta(hours=20)),
                  export_row(status="failed", created_at=end - timedelta(hours=1))])
    result = cli("metrics", "report", "--since", "2d", env={"OPSCTL_METRICS__PERIOD": "daily"})
    assert result.exit_code == 0, result.stdout + result.stderr
    event = result.one("metrics_report")
    assert event["period"] == "daily"
    assert [(p["window_start"], p["total"], p["failed"]) for p in event["series"]] == [
        (stamp(end - 2 * timedelta(days=1)), 0, 0), (stamp(end - timedelta(days=1)), 2, 1)]


def test_stored_rollups_are_used_and_the_run_is_not_recorded(cli: Cli, db_url: str) -> None:
    end = this_hour()
    seed(db_url, crafted(end))
    first = end - 3 * H
    stored = cli("metrics", "aggregate", "--store", "--since", stamp(first),
                 "--until", stamp(first + H))
    assert stored.exit_code == 0, stored.stdout
    # Rows that arrive after the rollup was stored: the report shows what cron recorded.
    insert_exports(db_url, [export_row(status="failed", created_at=first)] * 3)
    result = cli("metrics", "report", "--since", "3h")
    assert result.exit_code == 0, result.stdout + result.stderr
    event = result.one("metrics_report")
    assert (event["stored_periods"], event["computed_periods"]) == (1, 2)
    assert event["series"][0] == {
        "window_start": stamp(first), "total": 6, "completed": 4, "failed": 1,
        "failure_rate": 0.2, "p95_duration_ms": 385.0}
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            jobs = conn.execute(select(tables.runs.c.job)).scalars().all()
    finally:
        engine.dispose()
    assert jobs == ["metrics.aggregate"]


def test_missing_source_table_is_a_config_error(cli: Cli, db_url: str) -> None:
    seed(db_url, [export_row()], table="other_table")
    result = cli("metrics", "report")
    assert result.exit_code == 78, result.stdout + result.stderr
    error = result.one("error")["error"]
    assert error["kind"] == "source_missing"
    assert "[source] table" in error["message"] and "export_logs" in error["message"]


def test_unreachable_database_exits_3(home: Path) -> None:
    cli = Cli(isolated_env(home, "postgresql+psycopg://opsctl:pw@127.0.0.1:1/app"))
    result = cli("metrics", "report")
    assert result.exit_code == 3
    assert result.one("error")["error"]["kind"] == "database_unavailable"


@pytest.mark.parametrize("args", [("--since", "soon"), ("--since", "0s"), ("--since", "900d"),
                                  ("--period", "weekly")])
def test_bad_flags_exit_64(sqlite_cli: Cli, args: tuple[str, ...]) -> None:
    result = sqlite_cli("metrics", "report", *args)
    assert result.exit_code == 64, result.stdout + result.stderr
    assert result.one("error")["error"]["kind"] == "usage"


def test_text_view_has_three_block_charts_within_80_columns(sqlite_cli: Cli,
                                                             sqlite_url: str) -> None:
    end = this_hour()
    seed(sqlite_url, crafted(end))
    result = sqlite_cli("metrics", "report", "--since", "30d", output="text")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("hourly metrics, 720 periods: ")
    for title in ("exports per hour", "failure rate (threshold 10.0 %",
                  "p95 duration of completed exports"):
        assert any(line.startswith(title) for line in lines), result.stdout
    assert lines[1] == "one column = 10 periods, the highest shown"
    assert "█" in result.stdout and re.search(r"^ *10 % ┤", result.stdout, re.MULTILINE)
    assert "11 exports, 3 failed (30.0 %); busiest" in result.stdout
    assert "2 of 720 periods above the failure-rate threshold" in result.stdout
    assert max(len(line) for line in lines) <= 80


def test_text_view_of_an_empty_span_says_so(sqlite_cli: Cli, sqlite_url: str) -> None:
    seed(sqlite_url, [export_row(created_at=this_hour() - timedelta(days=3))])
    result = sqlite_cli("metrics", "report", "--since", "2h", output="text")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["no exports in these periods: nothing to chart"]
