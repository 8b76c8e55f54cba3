"""The documentation lists everything users depend on (the sqlite-utils habit)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsctl.domain.job_names import JOB_NAMES
from opsctl.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CRONTAB = (ROOT / "crontab.example").read_text()

COMMANDS = [
    "metrics aggregate", "failure-rate check", "files cleanup", "logs stats", "logs cleanup",
    "health probe", "runs list", "runs stats", "db init", "demo seed", "config show",
    "config validate", "metrics report", "logs verify", "logs restore", "files audit",
    "status", "schedule show", "schedule render",
]
EVENT_TYPES = [
    "aggregated_metrics", "metrics_threshold_warning", "failure_rate_check",
    "export_failure_alert", "export_failure_resolved", "export_file_cleanup_error",
    "export_file_cleanup_complete", "export_log_cleanup_stats", "export_log_archive_written",
    "export_log_cleanup_complete", "health_check", "health_probe", "job_skipped", "error",
    "job_run_stats", "job_run_stats_summary", "metrics_report", "metrics_backfill_complete",
    "export_log_archive_verified", "export_log_archive_object_bad",
    "export_log_archive_object_missing", "export_log_archive_object_unrecorded",
    "deletion_guard_tripped", "export_log_restore_complete",
    "export_log_restore_object_failed", "export_file_audit_complete",
    "status_report", "schedule_report", "schedule_rendered",
    "heartbeat_sent", "prometheus_export_failed", "alertmanager_sent",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_documents_every_command(command: str) -> None:
    assert f"opsctl {command}" in README


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_readme_documents_every_event_type(event_type: str) -> None:
    assert f"`{event_type}`" in README


@pytest.mark.parametrize("code", sorted({int(c) for c in ExitCode}))
def test_readme_documents_every_exit_code(code: int) -> None:
    assert re.search(rf"^\| [0-9, ]*\b{code}\b[0-9, ]* \|", README, re.MULTILINE)


@pytest.mark.parametrize("job", JOB_NAMES)
def test_readme_names_every_job(job: str) -> None:
    assert f"`{job}`" in README


@pytest.mark.parametrize(
    ("command", "schedule"),
    [
        ("metrics aggregate", "0 * * * *"),
        ("failure-rate check", "*/5 * * * *"),
        ("files cleanup", "0 2 * * *"),
        ("logs cleanup", "0 3 1 * *"),
        ("health probe", "* * * * *"),
    ],
)
def test_crontab_example_runs_each_job_on_its_schedule_with_timeout_and_a_log(
    command: str, schedule: str
) -> None:
    line = next(line for line in CRONTAB.splitlines() if f"opsctl {command}" in line)
    assert line.startswith(schedule)
    assert "timeout " in line and ">> /var/log/opsctl/" in line and "2>&1" in line


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in README and "<!-- test-command -->" in ci
    assert "OPSCTL_TEST_REQUIRE_SERVICES=1" in ci and "OPSCTL_TEST_DATABASE_URL" in ci
