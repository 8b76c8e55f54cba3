"""A wrong ``[source] table`` or column: exit 78 with one wording in every job, and the run
is recorded, because the database did answer. A database that does not answer stays 3."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select
from support import Cli, export_row, insert_exports, isolated_env

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database

JOBS = {
    "metrics.aggregate": ["metrics", "aggregate"],
    "failure-rate.check": ["failure-rate", "check"],
    "files.cleanup": ["files", "cleanup"],
    "logs.cleanup": ["logs", "cleanup"],
}
REPORTS = [["logs", "stats"], ["metrics", "report"]]


def recorded(url: str) -> list[tuple[str, int, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(tables.runs.name):
                return []
            t = tables.runs
            return [(job, code, (error or {}).get("kind", ""))
                    for job, code, error in conn.execute(
                        select(t.c.job, t.c.exit_code, t.c.error).order_by(t.c.id))]
    finally:
        engine.dispose()


@pytest.fixture
def wrong_table(cli: Cli, db_url: str, tmp_path: Path) -> Cli:
    Database(db_url).engine.dispose()
    insert_exports(db_url, [export_row()], table="export_logs")
    (tmp_path / "root").mkdir()
    return Cli({**cli.env, "OPSCTL_SOURCE__TABLE": "exports_typo",
                "OPSCTL_STORAGE__ROOT": str(tmp_path / "root")})


@pytest.mark.parametrize("job", list(JOBS))
def test_missing_table_is_78_and_recorded(wrong_table: Cli, db_url: str, job: str) -> None:
    for _ in range(2):
        result = wrong_table(*JOBS[job])
        assert result.exit_code == 78, result.stdout + result.stderr
        error = result.one("error")
        assert error["job"] == job and error["exit_code"] == 78
        assert error["error"]["kind"] == "source_missing"
        assert error["error"]["message"].startswith("source table exports_typo does not exist")
        assert "set [source] table" in error["error"]["message"]
    assert recorded(db_url) == [(job, 78, "source_missing")] * 2


@pytest.mark.parametrize("args", REPORTS)
def test_read_only_reports_say_the_same_and_record_nothing(wrong_table: Cli, db_url: str,
                                                          args: list[str]) -> None:
    result = wrong_table(*args)
    assert result.exit_code == 78, result.stdout + result.stderr
    assert result.one("error")["error"]["kind"] == "source_missing"
    assert "set [source] table" in result.one("error")["error"]["message"]
    assert recorded(db_url) == []


def test_runs_stats_sees_the_failures(wrong_table: Cli) -> None:
    for _ in range(3):
        assert wrong_table("failure-rate", "check").exit_code == 78
    stats = wrong_table("runs", "stats")
    assert stats.exit_code == 2
    (job,) = stats.of_type("job_run_stats")
    assert (job["job"], job["consecutive_failures"], job["state"]) == (
        "failure-rate.check", 3, "alert")


@pytest.mark.parametrize(("column", "args"), [
    ("status", ["failure-rate", "check"]), ("duration_ms", ["metrics", "aggregate"]),
    ("created_at", ["logs", "stats"])])
def test_missing_column_names_source_columns(cli: Cli, db_url: str, column: str,
                                             args: list[str]) -> None:
    Database(db_url).engine.dispose()
    insert_exports(db_url, [export_row()])
    result = cli(*args, "--window", "1h") if args[0] == "failure-rate" else cli(*args)
    assert result.exit_code == 0, result.stdout
    env = {f"OPSCTL_SOURCE__COLUMNS__{column.upper()}": f"{column}_typo"}
    broken = cli(*args, env=env)
    assert broken.exit_code == 78, broken.stdout + broken.stderr
    error = broken.one("error")["error"]
    assert error["kind"] == "source_missing"
    assert f"{column}_typo" in error["message"] and "[source.columns]" in error["message"]


def test_unreachable_database_is_still_3_and_not_recorded(home: Path) -> None:
    cli = Cli(isolated_env(home, "postgresql+psycopg://opsctl:pw@127.0.0.1:1/app"))
    for args in JOBS.values():
        result = cli(*args)
        assert result.exit_code == 3, args
        assert result.one("error")["error"]["kind"] == "database_unavailable"
