"""``opsctl failure-rate check`` through the real entry point, on SQLite and PostgreSQL,
with a real local webhook: every exit code, the cooldown and the resolution across
separate invocations, dry runs that write nothing, and a webhook URL that never shows."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import HttpServer
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from support import Cli, CliResult, export_row, insert_exports

from opsctl.adapters.db import locks
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.tables import alert_state, runs

TOKEN = "xoxb-T0KEN-9f8e7d-secret"
CHECK = ("failure-rate", "check")


def _finished(completed: int, failed: int, *, minutes_ago: float = 10,
              error_type: str = "timeout") -> list[dict[str, Any]]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return ([export_row(status="completed", created_at=at) for _ in range(completed)]
            + [export_row(status="failed", error_type=error_type, error_message="boom",
                          created_at=at) for _ in range(failed)])


def _seed(url: str, rows: list[dict[str, Any]]) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    insert_exports(url, rows)


def _table_rows(url: str, table: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table.name):
                return []
            return [dict(r) for r in conn.execute(select(table)).mappings()]
    finally:
        engine.dispose()


def _run_count(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(runs.name):
                return 0
            return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())
    finally:
        engine.dispose()


def _no_secret(result: CliResult) -> None:
    assert TOKEN not in result.stdout
    assert TOKEN not in result.stderr
    assert "/hooks/" not in result.stdout + result.stderr


@pytest.fixture
def hook(http_server: HttpServer) -> dict[str, str]:
    return {"OPSCTL_ALERTS__WEBHOOK_URL": f"{http_server.url}/hooks/{TOKEN}"}


def _summary(result: CliResult) -> dict[str, Any]:
    summary = result.one("failure_rate_check")
    assert result.events[-1] is summary  # the run ends with its summary
    return summary


# --- exit codes ------------------------------------------------------------------------------


def test_ok_exits_0_with_the_contract_fields(
    cli: Cli, db_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    # 1 of 20 = 5 %: exactly at the warning threshold, which is not above it.
    _seed(db_url, _finished(19, 1) + _finished(0, 30, minutes_ago=90))
    result = cli(*CHECK, env=hook)

    assert result.exit_code == 0
    summary = _summary(result)
    expected = {"type": "failure_rate_check", "job": "failure-rate.check", "state": "ok",
                "exit_code": 0, "total": 20, "completed": 19, "failed": 1,
                "failure_rate": 0.05, "threshold": 0.1, "warning": 0.05, "min_samples": 5,
                "alert_open": False, "notified": False, "suppressed_by_cooldown": False,
                "dry_run": False}
    assert {k: summary[k] for k in expected} == expected
    start = datetime.fromisoformat(summary["window_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(summary["window_end"].replace("Z", "+00:00"))
    assert end - start == timedelta(minutes=60)
    assert "status" not in summary
    assert result.of_type("export_failure_alert") == []
    assert http_server.requests == []
    assert _run_count(db_url) == 1


def test_warning_exits_1(cli: Cli, db_url: str, http_server: HttpServer,
                         hook: dict[str, str]) -> None:
    _seed(db_url, _finished(18, 2))  # 10 %: exactly at the alert threshold, so a warning
    result = cli(*CHECK, env=hook)
    assert result.exit_code == 1
    summary = _summary(result)
    assert (summary["state"], summary["failure_rate"], summary["level"]) == (
        "warning", 0.1, "warning")
    assert http_server.requests == []


def test_alert_exits_2_emits_the_alert_and_posts_once(
    cli: Cli, db_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(db_url, _finished(35, 3) + _finished(0, 2, error_type="s3_error"))
    result = cli(*CHECK, env=hook)

    assert result.exit_code == 2
    alert = result.one("export_failure_alert")
    expected = {"severity": "high", "failure_rate": 0.125, "threshold": 0.1, "total": 40,
                "failed": 5, "notified": True, "suppressed_by_cooldown": False,
                "top_error_types": [{"error_type": "timeout", "count": 3},
                                    {"error_type": "s3_error", "count": 2}]}
    assert {k: alert[k] for k in expected} == expected
    assert alert["run_id"] == _summary(result)["run_id"]
    summary = _summary(result)
    assert (summary["state"], summary["alert_transition"], summary["notified"]) == (
        "alert", "opened", True)

    [post] = http_server.requests
    assert post.path == f"/hooks/{TOKEN}"
    payload = json.loads(post.body)
    assert (payload["type"], payload["failure_rate"], payload["total"], payload["failed"]) == (
        "export_failure_alert", 0.125, 40, 5)
    assert payload["run_id"] == summary["run_id"]
    [row] = _table_rows(db_url, alert_state)
    assert (row["name"], row["state"]) == ("export_failure_rate", "open")
    assert row["last_notified_at"] == row["opened_at"]
    _no_secret(result)


def test_insufficient_samples_exits_0_and_notifies_nobody(
    cli: Cli, db_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(db_url, _finished(0, 4))  # 100 % failed, but only 4 finished exports
    result = cli(*CHECK, env=hook)
    assert result.exit_code == 0
    summary = _summary(result)
    assert (summary["state"], summary["total"], summary["failure_rate"]) == (
        "insufficient_samples", 4, 1.0)
    assert result.of_type("export_failure_alert") == []
    assert http_server.requests == []


# --- the alert across runs -------------------------------------------------------------------


def test_second_run_inside_the_cooldown_sends_nothing(
    cli: Cli, db_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(db_url, _finished(7, 1))
    first = cli(*CHECK, env=hook)
    second = cli(*CHECK, env=hook)

    assert (first.exit_code, second.exit_code) == (2, 2)
    assert len(http_server.requests) == 1
    alert = second.one("export_failure_alert")
    assert (alert["notified"], alert["suppressed_by_cooldown"]) == (False, True)
    assert _summary(second)["alert_transition"] is None
    assert alert["opened_at"] == first.one("export_failure_alert")["opened_at"]
    _no_secret(second)


def test_zero_cooldown_posts_on_every_run(
    sqlite_cli: Cli, sqlite_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(sqlite_url, _finished(7, 1))
    env = {**hook, "OPSCTL_ALERTS__COOLDOWN_MINUTES": "0"}
    sqlite_cli(*CHECK, env=env)
    sqlite_cli(*CHECK, env=env)
    assert len(http_server.requests) == 2


def test_resolution_posts_once_and_closes_the_alert(
    cli: Cli, db_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(db_url, _finished(7, 1))
    assert cli(*CHECK, env=hook).exit_code == 2
    _seed(db_url, _finished(92, 0))  # 1 of 100 failed now

    resolved = cli(*CHECK, env=hook)
    assert resolved.exit_code == 0
    event = resolved.one("export_failure_resolved")
    assert (event["failure_rate"], event["notified"]) == (0.01, True)
    assert _summary(resolved)["alert_transition"] == "resolved"
    assert [json.loads(r.body)["type"] for r in http_server.requests] == [
        "export_failure_alert", "export_failure_resolved"]
    [row] = _table_rows(db_url, alert_state)
    assert row["state"] == "resolved"

    again = cli(*CHECK, env=hook)
    assert again.exit_code == 0
    assert again.of_type("export_failure_resolved") == []
    assert len(http_server.requests) == 2
    _no_secret(resolved)


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_sends_nothing_and_writes_nothing(
    cli: Cli, db_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(db_url, _finished(7, 1))
    first = cli(*CHECK, "--dry-run", env=hook)
    assert first.exit_code == 2  # the verdict is the same as a real run's
    assert first.one("export_failure_alert")["notified"] is False
    assert _summary(first)["dry_run"] is True
    assert http_server.requests == []
    assert _table_rows(db_url, alert_state) == []
    assert _run_count(db_url) == 0

    # With an alert open, a dry run that would resolve it leaves it open.
    assert cli(*CHECK, env=hook).exit_code == 2
    before = (_table_rows(db_url, alert_state), _run_count(db_url), len(http_server.requests))
    _seed(db_url, _finished(92, 0))
    dry = cli(*CHECK, "--dry-run", env=hook)
    assert dry.exit_code == 0
    event = dry.one("export_failure_resolved")
    assert (event["notified"], event["dry_run"]) == (False, True)
    assert (_table_rows(db_url, alert_state), _run_count(db_url),
            len(http_server.requests)) == before


def test_opsctl_dry_run_variable_forces_a_dry_run(
    sqlite_cli: Cli, sqlite_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(sqlite_url, _finished(7, 1))
    result = sqlite_cli(*CHECK, env={**hook, "OPSCTL_DRY_RUN": "1"})
    assert result.exit_code == 2
    assert _summary(result)["dry_run"] is True
    assert result.one("export_failure_alert")["notified"] is False
    assert http_server.requests == []
    assert (_table_rows(sqlite_url, alert_state), _run_count(sqlite_url)) == ([], 0)


# --- webhook trouble and secrets (SQLite only: the database plays no part) -------------------


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/{TOKEN}"


def test_unreachable_webhook_keeps_exit_2_and_says_so_on_stderr(
    sqlite_cli: Cli, sqlite_url: str
) -> None:
    _seed(sqlite_url, _finished(7, 1))
    result = sqlite_cli(*CHECK, env={"OPSCTL_ALERTS__WEBHOOK_URL": _refused_url(),
                              "OPSCTL_ALERTS__TIMEOUT_S": "1"})
    assert result.exit_code == 2
    alert = result.one("export_failure_alert")
    assert alert["notified"] is False
    assert alert["notify_error"].startswith("ConnectError: ")
    assert "webhook notification (export_failure_alert) failed after 2 attempt(s)" in (
        result.stderr)
    assert result.of_type("error") == []
    _no_secret(result)


def test_webhook_answering_500_keeps_exit_2(
    sqlite_cli: Cli, sqlite_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    http_server.status = 500
    _seed(sqlite_url, _finished(7, 1))
    result = sqlite_cli(*CHECK, env=hook)
    assert result.exit_code == 2
    assert result.one("export_failure_alert")["notify_error"] == "the webhook answered HTTP 500"
    assert len(http_server.requests) == 2  # retried once
    _no_secret(result)


def test_debug_diagnostics_never_show_the_webhook_url(
    sqlite_cli: Cli, sqlite_url: str, http_server: HttpServer, hook: dict[str, str]
) -> None:
    _seed(sqlite_url, _finished(7, 1))
    result = sqlite_cli("--log-level", "debug", *CHECK, env=hook)
    assert result.exit_code == 2
    assert len(http_server.requests) == 1
    assert "HTTP Request: POST ***" in result.stderr  # httpx did log the request
    _no_secret(result)


def test_no_webhook_configured_is_not_an_error(sqlite_cli: Cli, sqlite_url: str) -> None:
    _seed(sqlite_url, _finished(7, 1))
    result = sqlite_cli(*CHECK)
    assert result.exit_code == 2
    alert = result.one("export_failure_alert")
    assert alert["notified"] is False and "notify_error" not in alert
    assert result.stderr == ""


# --- options, config, errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--threshold", "1.5"),
        ("--threshold", "-0.1"),
        ("--threshold", "nan"),
        ("--threshold", "ten"),
        ("--warning", "0.2"),  # above the default threshold 0.10
        ("--window", "5"),
        ("--window", "0m"),
        ("--min-samples", "-1"),
    ],
)
def test_bad_values_exit_64(sqlite_cli: Cli, args: tuple[str, ...]) -> None:
    result = sqlite_cli(*CHECK, *args)
    assert result.exit_code == 64
    error = result.one("error")
    assert error["error"]["kind"] == "usage"
    assert error["exit_code"] == 64


def test_flags_override_config(cli: Cli, db_url: str) -> None:
    _seed(db_url, _finished(7, 1) + _finished(0, 4, minutes_ago=40))  # 5 of 12 in 60m
    env = {"OPSCTL_FAILURE_RATE__THRESHOLD": "0.5", "OPSCTL_FAILURE_RATE__WARNING": "0.4"}
    from_config = _summary(cli(*CHECK, env=env))
    assert (from_config["state"], from_config["threshold"], from_config["total"]) == (
        "warning", 0.5, 12)

    flagged = cli(*CHECK, "--window", "30m", "--threshold", "0.1", "--warning", "0.05",
                  "--min-samples", "8", env=env)
    summary = _summary(flagged)
    assert (summary["total"], summary["failed"], summary["min_samples"]) == (8, 1, 8)
    assert (summary["state"], flagged.exit_code) == ("alert", 2)

    too_few = _summary(cli(*CHECK, "--min-samples", "13", env=env))
    assert too_few["state"] == "insufficient_samples"


def test_invalid_config_exits_78(sqlite_cli: Cli) -> None:
    result = sqlite_cli(*CHECK, env={"OPSCTL_FAILURE_RATE__THRESHOLD": "2"})
    assert result.exit_code == 78
    assert "failure_rate.threshold" in result.one("error")["error"]["message"]


def test_missing_export_table_exits_78(cli: Cli, db_url: str) -> None:
    _seed(db_url, [])
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE export_logs")
    engine.dispose()
    result = cli(*CHECK)
    assert result.exit_code == 78
    error = result.one("error")
    assert error["error"]["kind"] == "source_missing"
    assert "export_logs" in error["error"]["message"]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def held_lock(db_url: str) -> Iterator[None]:
    _seed(db_url, _finished(7, 1))
    db = Database(db_url)
    with locks.job_lock(db, "failure-rate.check"):
        yield
    db.dispose()


def test_overlapping_run_exits_75_and_notifies_nobody(
    cli: Cli, http_server: HttpServer, hook: dict[str, str], held_lock: None
) -> None:
    result = cli(*CHECK, env=hook)
    assert result.exit_code == 75
    assert result.one("job_skipped")["exit_code"] == 75
    assert http_server.requests == []


def test_text_output_for_people(sqlite_cli: Cli, sqlite_url: str) -> None:
    _seed(sqlite_url, _finished(35, 3) + _finished(0, 2, error_type="s3_error"))
    result = sqlite_cli(*CHECK, output="text", env={"NO_COLOR": "1"})
    assert result.exit_code == 2
    out = result.stdout
    assert out.startswith("alert: failure rate 12.5 % above the alert threshold 10.0 %")
    for text in ("12.5 %", "5 / 40", "10.0 %", "5.0 %", "timeout", "s3_error",
                 "opened now; no webhook configured", "last 1h: "):
        assert text in out
    assert "{" not in out  # no JSON for people
