"""``--format nagios`` on ``failure-rate check`` and ``runs stats`` through the real entry
point: exactly one plugin line on stdout, whatever ``--output`` says, with the exit code."""

from __future__ import annotations

import re
import socket
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from support import Cli, export_row, insert_exports, isolated_env

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.ports import RunRecord


def _seed(url: str, completed: int, failed: int) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC) - timedelta(minutes=10)
    insert_exports(url, [export_row(status="completed", created_at=at) for _ in range(completed)]
                   + [export_row(status="failed", error_type="timeout", created_at=at)
                      for _ in range(failed)])


def _record(url: str, *runs: tuple[str, timedelta, int, int]) -> None:
    db = Database(url)
    now = datetime.now(UTC)
    try:
        migrations.ensure_schema(db)
        rows: list[dict[str, Any]] = []
        for i, (job, ago, code, duration_ms) in enumerate(runs):
            finished = now - ago
            rows.append(asdict(RunRecord(
                job=job, run_id=f"nagios-{i}", host="cron-1",
                started_at=finished - timedelta(milliseconds=duration_ms),
                finished_at=finished, state="ok" if code == 0 else "error", exit_code=code,
                duration_ms=duration_ms, summary={}, error=None)))
        if rows:
            with db.begin() as conn:
                conn.execute(tables.runs.insert(), rows)
    finally:
        db.dispose()


def test_failure_rate_warning_line(cli: Cli, db_url: str) -> None:
    _seed(db_url, completed=93, failed=7)

    result = cli("--output", "json", "failure-rate", "check", "--format", "nagios", output=None)

    assert result.exit_code == 1
    assert result.stdout == (
        "OPSCTL FAILURE_RATE WARNING - failure rate 7.0 % above the warning threshold 5.0 % "
        "(7 of 100 exports failed in the last 1h) | 'failure_ratio'=0.07;0.05;0.1;0;1 "
        "'exports_finished'=100;;;0 'exports_failed'=7;;;0\n")


def test_failure_rate_alert_and_ok_lines(sqlite_cli: Cli, sqlite_url: str) -> None:
    _seed(sqlite_url, completed=8, failed=2)

    alert = sqlite_cli("failure-rate", "check", "--format", "nagios", output=None)
    ok = sqlite_cli("failure-rate", "check", "--format", "nagios", "--threshold", "0.5",
                    "--warning", "0.3", output="text")

    assert alert.exit_code == 2
    assert alert.stdout.startswith("OPSCTL FAILURE_RATE CRITICAL - failure rate 20.0 % above "
                                   "the alert threshold 10.0 % ")
    assert alert.stdout.endswith(" | 'failure_ratio'=0.2;0.05;0.1;0;1 "
                                 "'exports_finished'=10;;;0 'exports_failed'=2;;;0\n")
    assert ok.exit_code == 0
    assert ok.stdout.startswith("OPSCTL FAILURE_RATE OK - failure rate 20.0 % ")
    assert "'failure_ratio'=0.2;0.3;0.5;0;1" in ok.stdout


def test_failure_rate_without_exports_has_an_undetermined_ratio(
    sqlite_cli: Cli, sqlite_url: str
) -> None:
    _seed(sqlite_url, completed=0, failed=0)

    result = sqlite_cli("failure-rate", "check", "--format", "nagios", output=None)

    assert result.exit_code == 0
    assert result.stdout.startswith("OPSCTL FAILURE_RATE OK - only 0 finished exports")
    assert result.stdout.endswith(" | 'failure_ratio'=U;0.05;0.1;0;1 "
                                  "'exports_finished'=0;;;0 'exports_failed'=0;;;0\n")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_one_unknown_line_with_exit_3(home: Path) -> None:
    password = "pw-nagios-s3cret"
    cli = Cli(isolated_env(
        home, f"postgresql+psycopg://u:{password}@127.0.0.1:{closed_port()}/x"))

    result = cli("failure-rate", "check", "--format", "nagios", output=None)

    assert result.exit_code == 3
    assert result.stdout.startswith("OPSCTL FAILURE_RATE UNKNOWN - database_unavailable: ")
    assert result.stdout.count("\n") == 1
    assert password not in result.stdout + result.stderr


def test_a_bad_flag_is_still_a_usage_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("failure-rate", "check", "--format", "nagios", "--threshold", "2",
                        output=None)

    assert result.exit_code == 64
    assert result.stdout.startswith("OPSCTL FAILURE_RATE UNKNOWN - usage: --threshold")


def test_runs_stats_critical_line_names_the_failing_job_with_perfdata(
    cli: Cli, db_url: str
) -> None:
    minutes = [timedelta(minutes=m) for m in (50, 40, 30, 20, 10)]
    _record(db_url,
            *[("files.cleanup", ago, code, 2000) for ago, code in zip(minutes, (0, 0, 3, 78, 3),
                                                                     strict=True)],
            ("health.probe", timedelta(minutes=5), 0, 500))

    result = cli("--output", "json", "runs", "stats", "--format", "nagios", output=None)

    assert result.exit_code == 2
    line = result.stdout
    assert line.count("\n") == 1
    assert line.startswith(
        "OPSCTL RUNS_STATS CRITICAL - 1 of 2 jobs in alert over the last 7d: files.cleanup "
        "(files.cleanup: 60.0 % of 5 runs failed (> 50.0 %), last 3 runs failed (>= 3 in a "
        "row)) | 'jobs_in_alert'=1;;0;0 ")
    assert (" 'files.cleanup_runs'=5;;;0 'files.cleanup_success_ratio'=0.4;;0.5:;0;1 "
            "'files.cleanup_consecutive_failures'=3;;2;0 'files.cleanup_avg_duration'=2s;;300;0 "
            "'files.cleanup_last_success_age'=") in line
    assert (" 'health.probe_runs'=1;;;0 'health.probe_success_ratio'=1;;0.5:;0;1 "
            "'health.probe_consecutive_failures'=0;;2;0 'health.probe_avg_duration'=0.5s;;300;0 "
            "'health.probe_last_success_age'=") in line
    ages = dict(re.findall(r"'([\w.-]+)_last_success_age'=(\d+)s;;;0", line))
    # 40 and 5 minutes ago, give or take the seconds this test took to get here.
    assert 2400 <= int(ages["files.cleanup"]) < 2400 + 120
    assert 300 <= int(ages["health.probe"]) < 300 + 120


def test_runs_stats_ok_line_without_history(sqlite_cli: Cli, sqlite_url: str) -> None:
    _record(sqlite_url)

    result = sqlite_cli("runs", "stats", "--format", "nagios", output="text")

    assert result.exit_code == 0
    assert result.stdout == ("OPSCTL RUNS_STATS OK - no runs recorded in the last 7d "
                             "| 'jobs_in_alert'=0;;0;0\n")


@pytest.mark.parametrize("command", [("failure-rate", "check"), ("runs", "stats"),
                                     ("health", "probe")])
def test_an_unknown_format_is_a_usage_error(sqlite_cli: Cli, command: tuple[str, str]) -> None:
    assert sqlite_cli(*command, "--format", "icinga").exit_code == 64
