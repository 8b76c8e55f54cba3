"""The alerting rules we ship: valid, unit-tested by promtool, reading only opsctl's
metrics, with thresholds that match the default schedule."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from promql import EXPORTED_LABELS, EXPORTED_METRICS, FUNCTIONS, read_by, run_promtool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "opsctl-rules.yml"

# The contract's default [schedule] and grace.
DEFAULT_SCHEDULE = {
    "metrics.aggregate": "0 * * * *",
    "failure-rate.check": "*/5 * * * *",
    "files.cleanup": "0 2 * * *",
    "logs.cleanup": "0 3 1 * *",
    "health.probe": "* * * * *",
}
GRACE = timedelta(minutes=10)


def rules() -> list[dict[str, object]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = run_promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_promtool_unit_tests_prove_each_alert_fires_and_stays_quiet() -> None:
    result = run_promtool("test", "rules", "opsctl-rules.test.yml", cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (DEPLOY / "opsctl-rules.test.yml").read_text()))
    assert tested == {"OpsctlJobNotSucceeding", "OpsctlJobFailing", "OpsctlExportFailureRate"}


def test_a_broken_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The promtool run above can fail: a rule one minute slower breaks its test."""
    (tmp_path / "opsctl-rules.yml").write_text(
        RULES.read_text().replace("> 900\n", "> 960\n", 1))
    (tmp_path / "opsctl-rules.test.yml").write_text(
        (DEPLOY / "opsctl-rules.test.yml").read_text())
    result = run_promtool("test", "rules", "opsctl-rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


@pytest.mark.parametrize("alert", ["OpsctlJobNotSucceeding", "OpsctlJobFailing",
                                   "OpsctlExportFailureRate"])
def test_every_alert_has_a_delay_a_severity_and_its_annotations(alert: str) -> None:
    found = [rule for rule in rules() if rule.get("alert") == alert]
    assert found
    for rule in found:
        assert re.fullmatch(r"\d+m", str(rule["for"]))
        assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]
        assert set(rule["annotations"]) == {"summary", "description"}  # type: ignore[arg-type]


def test_rules_read_only_metrics_and_labels_opsctl_writes() -> None:
    for rule in rules():
        metrics, labels, functions = read_by(str(rule["expr"]))
        assert metrics and metrics <= EXPORTED_METRICS, rule["expr"]
        assert labels <= EXPORTED_LABELS, rule["expr"]
        assert functions <= FUNCTIONS, rule["expr"]


def longest_interval(expression: str, start: datetime, days: int) -> timedelta:
    """The longest gap between two fires of a simple cron expression (numbers, `*`, `*/n`;
    day-of-week `*`) over ``days`` days from ``start``."""
    minute, hour, dom, month, dow = expression.split()
    assert dow == "*"

    def values(field: str, low: int, high: int) -> list[int]:
        if field == "*":
            return list(range(low, high + 1))
        if field.startswith("*/"):
            return list(range(low, high + 1, int(field[2:])))
        return [int(field)]

    fires: list[datetime] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day.month in values(month, 1, 12) and day.day in values(dom, 1, 31):
            fires += [day.replace(hour=h, minute=m)
                      for h in values(hour, 0, 23) for m in values(minute, 0, 59)]
    return max(later - earlier for earlier, later in pairwise(fires))


def test_not_succeeding_thresholds_are_the_default_schedule_plus_grace() -> None:
    late = next(r for r in rules() if r.get("labels", {}).get("reason") == "late")  # type: ignore[union-attr]
    thresholds = {job: int(limit) for job, limit in re.findall(
        r'opsctl_job="([^"]+)"\}\s*>\s*(\d+)', str(late["expr"]))}
    assert set(thresholds) == set(DEFAULT_SCHEDULE)
    start = datetime(2027, 1, 1, tzinfo=UTC)
    for job, expression in DEFAULT_SCHEDULE.items():
        days = 400 if job == "logs.cleanup" else 3
        expected = longest_interval(expression, start, days) + GRACE
        assert thresholds[job] == expected.total_seconds(), job


def test_never_succeeded_rule_watches_every_scheduled_job() -> None:
    never = next(r for r in rules()
                 if r.get("labels", {}).get("reason") == "never_succeeded")  # type: ignore[union-attr]
    watched = re.search(r'opsctl_job=~"([^"]+)"', str(never["expr"]))
    assert watched and set(watched.group(1).split("|")) == set(DEFAULT_SCHEDULE)


def test_the_rules_table_is_the_default_schedule_opsctl_runs_with() -> None:
    from opsctl.domain.durations import parse_duration
    from opsctl.settings.schedule import DEFAULT_SCHEDULES, ScheduleSettings

    assert DEFAULT_SCHEDULE == DEFAULT_SCHEDULES
    assert parse_duration(ScheduleSettings().grace) == GRACE
