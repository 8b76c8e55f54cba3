"""``opsctl metrics aggregate --store --backfill DUR`` through the real entry point, on
SQLite and PostgreSQL.

The rows sit two and three hours before the current one and the backfill covers four
hours, so the expected counts hold even if the hour turns during the test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from support import Cli, database_snapshot, export_row, insert_exports

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.events import COMMON_FIELDS, rfc3339

HOUR = timedelta(hours=1)


def current_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def seed(url: str, anchor: datetime) -> None:
    Database(url).engine.dispose()  # creates the SQLite directory
    early, late = anchor - 3 * HOUR, anchor - 2 * HOUR
    insert_exports(url, [
        export_row(duration_ms=100, created_at=early + timedelta(minutes=5)),
        export_row(duration_ms=300, created_at=early + timedelta(minutes=50)),
        export_row(status="failed", error_type="timeout", created_at=early),
        export_row(format="csv", duration_ms=2000, created_at=late + timedelta(minutes=1)),
    ])


def rollups(url: str) -> dict[datetime, tuple[str, int, float | None, dict[str, Any]]]:
    engine = create_engine(url)
    t = tables.metric_rollups
    try:
        with engine.connect() as conn:
            return {
                start: (period, total, rate, metrics)
                for period, start, total, rate, metrics in conn.execute(select(
                    t.c.period, t.c.window_start, t.c.total_exports, t.c.failure_rate,
                    t.c.metrics))
            }
    finally:
        engine.dispose()


def test_backfill_stores_missing_periods_and_keeps_the_stored_ones(
    cli: Cli, db_url: str
) -> None:
    anchor = current_hour()
    seed(db_url, anchor)
    early = anchor - 3 * HOUR
    single = cli("metrics", "aggregate", "--store", "--since", early.isoformat(),
                 "--until", (early + HOUR).isoformat())
    assert single.exit_code == 0, single.stdout + single.stderr

    result = cli("metrics", "aggregate", "--store", "--backfill", "4h")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [e["type"] for e in result.events] == ["metrics_backfill_complete"]
    event = result.one("metrics_backfill_complete")
    assert set(COMMON_FIELDS) <= set(event) and "status" not in event
    assert (event["job"], event["state"], event["exit_code"]) == ("metrics.aggregate", "ok", 0)
    # the hour stored by the single run is recomputed equal: not written again
    assert (event["periods"], event["inserted"], event["updated"], event["unchanged"]) == (
        4, 3, 0, 1)
    assert event["window_end"] in (rfc3339(anchor), rfc3339(anchor + HOUR))
    end = datetime.fromisoformat(event["window_end"].replace("Z", "+00:00"))
    assert event["window_start"] == rfc3339(end - 4 * HOUR)

    stored = rollups(db_url)
    assert len(stored) == 4 and {v[0] for v in stored.values()} == {"hourly"}
    period, total, rate, metrics = stored[early]
    assert (total, rate, metrics["completed"], metrics["p50_duration_ms"]) == (
        3, 1 / 3, 2, 200.0)
    assert stored[anchor - 2 * HOUR][3]["by_format"]["csv"]["p95_duration_ms"] == 2000.0
    empty = stored[anchor - HOUR]
    assert (empty[1], empty[2], empty[3]["exports_per_hour"]) == (0, None, 0.0)

    # a late row and a status change: only that period is rewritten
    insert_exports(db_url, [export_row(status="failed", error_type="quota",
                                       created_at=anchor - 2 * HOUR)])
    again = cli("metrics", "aggregate", "--store", "--backfill", "4h").one(
        "metrics_backfill_complete")
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 1, 3)
    assert rollups(db_url)[anchor - 2 * HOUR][3]["top_error_types"] == [
        {"error_type": "quota", "count": 1}]


def test_daily_backfill(cli: Cli, db_url: str) -> None:
    seed(db_url, current_hour())
    event = cli("metrics", "aggregate", "--store", "--period", "daily", "--backfill", "3d").one(
        "metrics_backfill_complete")
    assert (event["period"], event["periods"], event["inserted"]) == ("daily", 3, 3)
    assert event["window_end"].endswith("T00:00:00.000Z")


def test_dry_run_writes_nothing(cli: Cli, db_url: str) -> None:
    seed(db_url, current_hour())
    assert cli("db", "init").exit_code == 0
    before = database_snapshot(db_url)
    result = cli("metrics", "aggregate", "--store", "--backfill", "4h", "--dry-run")
    assert result.exit_code == 0, result.stdout + result.stderr
    event = result.one("metrics_backfill_complete")
    assert (event["dry_run"], event["inserted"]) == (True, 4)
    assert database_snapshot(db_url) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--backfill", "4h"), "--backfill needs --store"),
        (("--store", "--backfill", "4h", "--window", "1h"), "cannot be combined"),
        (("--store", "--backfill", "4h", "--since", "2026-11-01"), "cannot be combined"),
        (("--store", "--backfill", "30m"), "shorter than one hourly period"),
        (("--store", "--backfill", "soon"), "--backfill"),
    ],
)
def test_bad_backfill_flags_exit_64(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    result = cli("metrics", "aggregate", *args)
    assert result.exit_code == 64
    assert needle in result.one("error")["error"]["message"]


def test_text_output_names_the_counts(cli: Cli, db_url: str) -> None:
    seed(db_url, current_hour())
    result = cli("metrics", "aggregate", "--store", "--backfill", "2h", output="text")
    assert result.exit_code == 0, result.stderr
    assert "inserted" in result.stdout and "unchanged" in result.stdout
