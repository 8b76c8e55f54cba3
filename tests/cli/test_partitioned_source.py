"""Every job on a real partitioned source table (PostgreSQL, RANGE on created_at, monthly
partitions and a DEFAULT one, primary key (id, created_at)), through the real entry
point, with the counts checked against the rows."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support import PARTITIONED_DDL, Cli, export_row, insert_exports, isolated_env

pytestmark = pytest.mark.postgres



@pytest.fixture
def cli(home: Path, pg_url: str) -> Cli:
    return Cli(isolated_env(home, pg_url))


def month(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    return month(month(moment) + timedelta(days=32))


@pytest.fixture
def partitioned(pg_url: str) -> tuple[str, int, int]:
    """The table with this month's and last month's partitions and a DEFAULT one (which
    takes everything older); 40 rows 60 days old, 30 rows 10 days old, 20 in the last
    hour (4 of them failed). Returns the URL, the row count and the rows older than 30
    days."""
    now = datetime.now(UTC)
    this = month(now)
    last = month(this - timedelta(days=1))
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(PARTITIONED_DDL))
            for start in (last, this):
                name = f"export_logs_{start:%Y_%m}"
                conn.execute(text(
                    f"CREATE TABLE {name} PARTITION OF export_logs FOR VALUES FROM "
                    f"('{start.isoformat()}') TO ('{next_month(start).isoformat()}')"))
            conn.execute(text("CREATE TABLE export_logs_default PARTITION OF export_logs "
                              "DEFAULT"))
    finally:
        engine.dispose()
    rows = [export_row(created_at=now - timedelta(days=60, minutes=i)) for i in range(40)]
    rows += [export_row(created_at=now - timedelta(days=10, minutes=i)) for i in range(30)]
    rows += [export_row(status="failed" if i < 4 else "completed", error_type="timeout",
                        created_at=now - timedelta(minutes=5 + i)) for i in range(20)]
    insert_exports(pg_url, rows)
    return pg_url, len(rows), 40


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_window_jobs_count_every_partition(
    cli: Cli, partitioned: tuple[str, int, int]
) -> None:
    url, total, _ = partitioned
    env = {"OPSCTL_DATABASE__URL": url}
    metrics = cli("metrics", "aggregate", "--window", "90d", env=env)
    assert metrics.exit_code in (0, 1), metrics.stdout
    assert metrics.one("aggregated_metrics")["total_exports"] == total
    rate = cli("failure-rate", "check", "--window", "60m", env=env)
    event = rate.one("failure_rate_check")
    assert (event["total"], event["failed"], rate.exit_code) == (20, 4, 2)
    backfill = cli("metrics", "aggregate", "--store", "--backfill", "24h", env=env)
    assert backfill.one("metrics_backfill_complete")["periods"] == 24
    status = cli("status", env=env)
    assert status.exit_code in (0, 1, 2), status.stdout


def test_logs_stats_and_cleanup_with_archive(
    cli: Cli, partitioned: tuple[str, int, int], tmp_path: Path
) -> None:
    url, total, old = partitioned
    env = {"OPSCTL_DATABASE__URL": url}
    stats = cli("logs", "stats", env=env).one("export_log_cleanup_stats")
    assert (stats["total_rows"], stats["eligible_for_cleanup"]) == (total, old)
    archive = (tmp_path / "archive").as_uri()
    result = cli("logs", "cleanup", "--archive-uri", archive, "--batch-size", "15", env=env)
    assert result.exit_code == 0, result.stdout
    summary = result.one("export_log_cleanup_complete")
    assert (summary["archived_count"], summary["deleted_count"]) == (old, old)
    assert count(url, "SELECT count(*) FROM export_logs") == total - old
    assert count(url, "SELECT count(*) FROM export_logs_default") == 0
    again = cli("logs", "cleanup", "--no-archive", env=env).one("export_log_cleanup_complete")
    assert again["deleted_count"] == 0


def test_files_cleanup_dry_run(cli: Cli, partitioned: tuple[str, int, int],
                               tmp_path: Path) -> None:
    url, _, _ = partitioned
    (tmp_path / "files").mkdir()
    result = cli("files", "cleanup", "--dry-run", env={
        "OPSCTL_DATABASE__URL": url, "OPSCTL_STORAGE__ROOT": str(tmp_path / "files")})
    assert result.exit_code == 0, result.stdout
    assert result.one("export_file_cleanup_complete")["candidates"] == 0


def test_source_indexes_on_a_partitioned_table(
    cli: Cli, partitioned: tuple[str, int, int]
) -> None:
    url, _, _ = partitioned
    env = {"OPSCTL_DATABASE__URL": url}
    planned = cli("db", "init", "--source-indexes", "--dry-run", env=env).one("db_init")
    statement = planned["source_indexes"][0]["statement"]
    assert statement.startswith("CREATE INDEX IF NOT EXISTS ix_export_logs_created_at_id "
                                "ON ONLY export_logs")
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_export_logs_default_created_at_id" in (
        statement)
    made = cli("db", "init", "--source-indexes", env=env)
    assert made.exit_code == 0, made.stdout
    assert [i["state"] for i in made.one("db_init")["source_indexes"]] == ["created"] * 2
    # every partition has its own, so the parent's indexes are valid
    assert count(url, "SELECT count(*) FROM pg_index WHERE indrelid = "
                      "'export_logs'::regclass AND indisvalid AND indexrelid::regclass::text "
                      "LIKE 'ix_export_logs_%'") == 2
    again = cli("db", "init", "--source-indexes", env=env).one("db_init")
    assert [i["state"] for i in again["source_indexes"]] == ["present"] * 2


def test_files_jobs_reports_and_probe_on_a_partitioned_table(
    cli: Cli, partitioned: tuple[str, int, int], tmp_path: Path
) -> None:
    url, total, _ = partitioned
    root = tmp_path / "files"
    root.mkdir()
    now = datetime.now(UTC)
    # Two expired exports in two partitions (one in DEFAULT), one live, one orphan file.
    for name in ("due-a.json", "due-b.json", "live.json", "orphan.json"):
        (root / name).write_text("{}")
    old_stamp = (now - timedelta(days=3)).timestamp()
    os.utime(root / "orphan.json", (old_stamp, old_stamp))
    insert_exports(url, [
        export_row(file_path="due-a.json", created_at=now - timedelta(days=8),
                   expires_at=now - timedelta(days=1)),
        export_row(file_path="due-b.json", created_at=now - timedelta(days=90),
                   expires_at=now - timedelta(days=83)),
        export_row(file_path="live.json", created_at=now - timedelta(hours=2),
                   expires_at=now + timedelta(days=7)),
    ])
    env = {"OPSCTL_DATABASE__URL": url, "OPSCTL_STORAGE__ROOT": str(root)}

    cleanup = cli("files", "cleanup", env=env)
    assert cleanup.exit_code == 0, cleanup.stdout
    assert cleanup.one("export_file_cleanup_complete")["deleted_count"] == 2
    assert sorted(p.name for p in root.iterdir()) == ["live.json", "orphan.json"]
    assert count(url, "SELECT count(*) FROM export_logs WHERE status = 'expired'") == 2

    audit = cli("files", "audit", env=env).one("export_file_audit_complete")
    assert (audit["stored_files"], audit["orphan_count"]) == (2, 1)
    report = cli("metrics", "report", "--since", "24h", env=env)
    assert report.exit_code == 0, report.stdout
    summary = report.one("metrics_report")
    series = summary["series"]
    assert summary["period"] == "hourly"
    start = series[0]["window_start"]
    end = datetime.fromisoformat(series[-1]["window_start"]) + timedelta(hours=1)
    assert sum(p["total"] for p in series) == count(
        url, f"SELECT count(*) FROM export_logs WHERE created_at >= '{start}' "
             f"AND created_at < '{end}'") > 0
    probe = cli("health", "probe", env=env)
    assert probe.one("health_probe")["state"] in ("healthy", "degraded"), probe.stdout
    assert count(url, "SELECT count(*) FROM export_logs") == total + 3
