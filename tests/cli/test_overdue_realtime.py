"""The dead man's switch in real time: an every-minute schedule, a one-second grace, the
real clock and the real entry point; nothing patched."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from support import Cli, insert_exports

ENV = {
    "OPSCTL_SCHEDULE__METRICS__AGGREGATE": "* * * * *",  # will never run
    "OPSCTL_SCHEDULE__FAILURE_RATE__CHECK": "",
    "OPSCTL_SCHEDULE__FILES__CLEANUP": "",
    "OPSCTL_SCHEDULE__LOGS__CLEANUP": "",
    "OPSCTL_SCHEDULE__HEALTH__PROBE": "* * * * *",
    "OPSCTL_SCHEDULE__GRACE": "1s",
}


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def overdue(cli: Cli) -> tuple[int, dict[str, bool]]:
    result = cli("schedule", "show", env=ENV)
    jobs = {row["job"]: row["overdue"] for row in result.one("schedule_report")["jobs"]}
    return result.exit_code, {job: jobs[job] for job in ("metrics.aggregate", "health.probe")}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_jobs_become_overdue_as_their_minutes_pass_and_a_run_clears_it(
    sqlite_cli: Cli, sqlite_url: str
) -> None:
    # Set up at the start of a minute, so tables and the probe's run share that minute.
    if datetime.now(UTC).second > 15:
        sleep_until(datetime.now(UTC).replace(second=0, microsecond=0)
                    + timedelta(minutes=1, seconds=1))
    started = datetime.now(UTC)
    first_fire = started.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert sqlite_cli("db", "init").exit_code == 0
    insert_exports(sqlite_url, [])  # status also reads the source table
    assert sqlite_cli("health", "probe", env=ENV).exit_code == 0
    assert datetime.now(UTC) < first_fire, "the machine is too slow for this test's minute"

    assert overdue(sqlite_cli) == (0, {"metrics.aggregate": False, "health.probe": False})

    # One fire since: the probe's run started within a minute before it, and a job that
    # never ran gets a second fire before it counts as overdue.
    sleep_until(first_fire + timedelta(seconds=2))
    assert overdue(sqlite_cli) == (0, {"metrics.aggregate": False, "health.probe": False})

    # Two fires since: both missed one.
    sleep_until(first_fire + timedelta(minutes=1, seconds=2))
    assert overdue(sqlite_cli) == (2, {"metrics.aggregate": True, "health.probe": True})
    status = sqlite_cli("status", env=ENV)
    assert status.exit_code == 2
    assert "metrics.aggregate is overdue" in status.one("status_report")["findings"]

    assert sqlite_cli("health", "probe", env=ENV).exit_code == 0
    assert overdue(sqlite_cli) == (2, {"metrics.aggregate": True, "health.probe": False})
