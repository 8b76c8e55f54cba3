"""``freshness`` with ``max_age = "schedule"`` through the real entry point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import Cli

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database


def prepare(url: str, created: datetime) -> None:
    db = Database(url)
    migrations.ensure_schema(db)
    with db.begin() as conn:
        conn.execute(tables.schema_version.update().where(tables.schema_version.c.version == 1)
                     .values(applied_at=created))
    db.dispose()


def test_the_probe_exits_2_through_the_cli_when_the_job_is_overdue(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    prepare(db_url, datetime.now(UTC) - timedelta(days=2))
    config = tmp_path / "opsctl.toml"
    config.write_text('[[health.checks]]\nname = "metrics-on-time"\nkind = "freshness"\n'
                      'job = "metrics.aggregate"\nmax_age = "schedule"\n')

    result = cli("--config", str(config), "health", "probe")

    assert result.exit_code == 2
    check = result.one("health_check")
    assert check["state"] == "critical" and check["detail"]["overdue"] is True


def test_schedule_for_an_unscheduled_job_is_a_config_error(sqlite_cli: Cli,
                                                           tmp_path: Path) -> None:
    config = tmp_path / "opsctl.toml"
    config.write_text('[schedule]\nfiles.cleanup = ""\n[[health.checks]]\nname = "files"\n'
                      'kind = "freshness"\njob = "files.cleanup"\nmax_age = "schedule"\n')

    result = sqlite_cli("--config", str(config), "config", "validate")

    assert result.exit_code == 78
    assert result.one("error")["error"]["message"].startswith("health.checks[0].max_age: ")
