"""Alerts reach a real Alertmanager from ``failure-rate check``, ``runs stats`` and
``health probe`` through the real entry point: fired, re-sent, resolved; the webhook keeps
working beside it, and a manager that is down changes no exit code."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import HttpServer
from prometheus_servers import Server, http_json
from sqlalchemy.engine import make_url
from support import Cli, export_row, insert_exports

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.ports import RunRecord

CHECK = ("failure-rate", "check")
SECRET = "T0KEN-am-7f6e5d"


def seed(url: str, completed: int, failed: int) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC) - timedelta(minutes=5)
    insert_exports(url, [export_row(status="completed", created_at=at) for _ in range(completed)]
                   + [export_row(status="failed", error_type="timeout", created_at=at)
                      for _ in range(failed)])


def config(tmp_path: Path, alertmanager: str, extra: str = "") -> str:
    path = tmp_path / "opsctl.toml"
    path.write_text(f'[alerts]\nalertmanager_url = "{alertmanager}"\n{extra}', encoding="utf-8")
    return str(path)


def active(server: Server) -> list[dict[str, Any]]:
    return [a for a in http_json(server.url + "/api/v2/alerts")
            if a["labels"].get("service") == "opsctl"]


def test_failure_rate_alert_fires_is_re_sent_then_resolves_beside_the_webhook(
    cli: Cli, db_url: str, tmp_path: Path, alertmanager: Server, http_server: HttpServer
) -> None:
    seed(db_url, completed=8, failed=2)
    cfg = config(tmp_path, alertmanager.url)
    hook = {"OPSCTL_ALERTS__WEBHOOK_URL": f"{http_server.url}/hooks/{SECRET}"}

    first = cli("--config", cfg, *CHECK, env=hook)
    second = cli("--config", cfg, *CHECK, env=hook)

    assert first.exit_code == second.exit_code == 2
    (alert,) = active(alertmanager)
    assert alert["labels"] == {"alertname": "OpsctlExportFailureRate", "severity": "critical",
                               "service": "opsctl", "opsctl_job": "failure-rate.check"}
    assert alert["annotations"]["summary"] == "export failure rate 20.0 % is above 10.0 %"
    assert alert["annotations"]["description"].startswith("2 of 10 exports failed")
    for run in (first, second):  # re-sent every run: no cooldown for Alertmanager
        sent = run.one("alertmanager_sent")
        assert (sent["ok"], sent["firing"], sent["resolved"]) == (True, 1, 0)
    webhook = [r for r in http_server.requests if r.path.startswith("/hooks/")]
    assert len(webhook) == 1  # the webhook's cooldown still holds
    assert second.one("export_failure_alert")["suppressed_by_cooldown"] is True

    seed(db_url, completed=90, failed=0)
    third = cli("--config", cfg, *CHECK, env=hook)

    assert third.exit_code == 0
    sent = third.one("alertmanager_sent")
    assert (sent["firing"], sent["resolved"]) == (0, 1)
    assert active(alertmanager) == []
    assert third.one("export_failure_resolved")["notified"] is True
    assert SECRET not in third.stdout + third.stderr


def test_a_down_alertmanager_changes_no_exit_code(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path
) -> None:
    seed(sqlite_url, completed=8, failed=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = config(tmp_path, f"http://127.0.0.1:{port}")

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 2
    sent = result.one("alertmanager_sent")
    assert (sent["ok"], sent["level"], sent["error"]["kind"]) == (False, "warning", "refused")
    assert result.events[-1]["type"] == "failure_rate_check"


def test_an_answer_that_is_not_json_changes_no_exit_code(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, http_server: HttpServer
) -> None:
    seed(sqlite_url, completed=8, failed=2)
    http_server.body = b"OK"  # a login proxy, or a wrong path in front of Alertmanager
    cfg = config(tmp_path, f"{http_server.url}/am")

    result = sqlite_cli("--config", cfg, *CHECK)

    assert result.exit_code == 2, result.stdout
    sent = result.one("alertmanager_sent")
    assert (sent["ok"], sent["level"], sent["error"]["kind"]) == (False, "warning",
                                                                  "bad_response")
    assert sent["firing"] == 1
    assert [r.method for r in http_server.requests] == ["GET", "POST"]  # still sent
    assert result.events[-1]["type"] == "failure_rate_check"


def test_a_dry_run_sends_nothing(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, alertmanager: Server
) -> None:
    seed(sqlite_url, completed=8, failed=2)
    cfg = config(tmp_path, alertmanager.url)

    flag = sqlite_cli("--config", cfg, *CHECK, "--dry-run")
    forced = sqlite_cli("--config", cfg, "runs", "stats", env={"OPSCTL_DRY_RUN": "1"})

    assert flag.exit_code == 2 and forced.exit_code == 0
    assert flag.of_type("alertmanager_sent") == forced.of_type("alertmanager_sent") == []
    assert active(alertmanager) == []


def record(url: str, *runs: tuple[str, int]) -> None:
    db = Database(url)
    now = datetime.now(UTC)
    try:
        migrations.ensure_schema(db)
        rows = []
        for i, (job, code) in enumerate(runs):
            finished = now - timedelta(minutes=len(runs) - i)
            rows.append(asdict(RunRecord(
                job=job, run_id=f"am-{job}-{i}-{now.timestamp()}", host="cron-1",
                started_at=finished - timedelta(seconds=1), finished_at=finished,
                state="ok" if code == 0 else "error", exit_code=code, duration_ms=1000)))
        with db.begin() as conn:
            conn.execute(tables.runs.insert(), rows)
    finally:
        db.dispose()


def test_runs_stats_fires_one_alert_per_failing_job_and_resolves_it(
    cli: Cli, db_url: str, tmp_path: Path, alertmanager: Server
) -> None:
    record(db_url, ("files.cleanup", 3), ("files.cleanup", 3), ("files.cleanup", 3),
           ("logs.cleanup", 78), ("logs.cleanup", 78), ("logs.cleanup", 78),
           ("health.probe", 0))
    cfg = config(tmp_path, alertmanager.url)

    failing = cli("--config", cfg, "runs", "stats")

    assert failing.exit_code == 2
    alerts = sorted((a["labels"]["opsctl_job"], a["labels"]["alertname"],
                     a["labels"]["severity"]) for a in active(alertmanager))
    assert alerts == [("files.cleanup", "OpsctlJobFailing", "critical"),
                      ("logs.cleanup", "OpsctlJobFailing", "critical")]
    by_job = {a["labels"]["opsctl_job"]: a["annotations"] for a in active(alertmanager)}
    assert by_job["files.cleanup"] == {"summary": "opsctl job files.cleanup is failing",
                                       "description": "last 3 runs failed (>= 3 in a row)"}

    record(db_url, ("files.cleanup", 0))
    better = cli("--config", cfg, "runs", "stats")

    assert better.exit_code == 2  # logs.cleanup still fails
    assert [a["labels"]["opsctl_job"] for a in active(alertmanager)] == ["logs.cleanup"]
    sent = better.one("alertmanager_sent")
    assert (sent["firing"], sent["resolved"]) == (1, 1)


def test_an_unhealthy_probe_fires_one_alert_per_failing_critical_check(
    sqlite_cli: Cli, sqlite_url: str, tmp_path: Path, alertmanager: Server,
    http_server: HttpServer
) -> None:
    db = Database(sqlite_url)
    migrations.ensure_schema(db)
    db.dispose()
    http_server.responder = lambda rec: (200, b"ok") if rec.path.startswith(
        "/alertmanager") else (503, b"down")
    checks = (
        '[[health.checks]]\nname = "api"\nkind = "http"\n'
        f'url = "{http_server.url}/health"\n'
        '[[health.checks]]\nname = "cdn"\nkind = "http"\ncritical = false\n'
        f'url = "{http_server.url}/cdn"\n'
        '[[health.checks]]\nname = "db"\nkind = "database"\n'
    )
    cfg = config(tmp_path, alertmanager.url, checks)

    result = sqlite_cli("--config", cfg, "health", "probe")

    assert result.exit_code == 2
    (alert,) = active(alertmanager)
    assert alert["labels"] == {"alertname": "OpsctlUnhealthy", "severity": "critical",
                               "service": "opsctl", "opsctl_job": "health.probe",
                               "check": "api"}
    assert alert["annotations"]["summary"] == "health check api (http) is failing"

    http_server.responder = None
    healed = sqlite_cli("--config", cfg, "health", "probe", "--check", "api")

    assert healed.exit_code == 0
    assert active(alertmanager) == []
    hooks = [json.loads(r.body) for r in http_server.requests if r.path == "/alertmanager"]
    assert any(n["status"] == "firing" for n in hooks)
