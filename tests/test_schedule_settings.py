"""``[schedule]``: every spelling of a job name means the same; every mistake is a 78
naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import Cli

from opsctl.errors import ConfigError
from opsctl.settings import load_settings, redacted


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    config = tmp_path / "opsctl.toml"
    config.write_text(text)
    return load_settings(config, {"HOME": str(tmp_path), **(env or {})}).schedule.jobs()


def test_dotted_and_quoted_keys_mean_the_same(tmp_path: Path) -> None:
    dotted = load(tmp_path, '[schedule]\nmetrics.aggregate = "5 * * * *"\n'
                  'failure-rate.check = "*/7 * * * *"\n')
    quoted = load(tmp_path, '[schedule]\n"metrics.aggregate" = "5 * * * *"\n'
                  '"failure-rate.check" = "*/7 * * * *"\n')
    table = load(tmp_path, '[schedule.metrics]\naggregate = "5 * * * *"\n'
                 '[schedule.failure-rate]\ncheck = "*/7 * * * *"\n')

    assert dotted == quoted == table
    assert dotted["metrics.aggregate"] == "5 * * * *"
    assert dotted["failure-rate.check"] == "*/7 * * * *"
    assert dotted["health.probe"] == "* * * * *"  # the runbook's default stays


def test_environment_variables_name_jobs_with_underscores(tmp_path: Path) -> None:
    jobs = load(tmp_path, "", {"OPSCTL_SCHEDULE__FAILURE_RATE__CHECK": "1 * * * *",
                               "OPSCTL_SCHEDULE__FILES__CLEANUP": ""})

    assert jobs["failure-rate.check"] == "1 * * * *" and jobs["files.cleanup"] == ""


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    jobs = load(tmp_path, '[schedule]\nhealth.probe = "*/2 * * * *"\n',
                {"OPSCTL_SCHEDULE__HEALTH__PROBE": "*/3 * * * *"})

    assert jobs["health.probe"] == "*/3 * * * *"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('metrics.aggregat = "0 * * * *"', "schedule.metrics.aggregat", "unknown job"),
        ('"logs.restore" = "0 * * * *"', "schedule.logs.restore", "unknown job"),
        ('health.probe = "61 * * * *"', "schedule.health.probe", "outside 0-59"),
        ('health.probe = "* * * * * *"', "schedule.health.probe", "6 fields"),
        ('health.probe = "@reboot"', "schedule.health.probe", "@reboot"),
        ('grace = "soon"', "schedule.grace", "invalid duration"),
        ('command = "opsctl"', "schedule.command", "absolute path"),
        ('command = "/opt/my opsctl/bin/opsctl"', "schedule.command", "spaces"),
        ('image = ""', "schedule.image", "at least 1"),
    ],
)
def test_mistakes_are_config_errors_naming_the_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[schedule]\n{text}\n")

    assert caught.value.key == key
    assert caught.value.message.startswith(f"{key}: ") and words in caught.value.message


def test_config_show_writes_job_names_as_in_the_file(tmp_path: Path) -> None:
    settings = load_settings(environ={"HOME": str(tmp_path)})

    assert redacted(settings)["schedule"] == {
        "grace": "10m", "command": "/opt/opsctl/bin/opsctl", "image": "opsctl:latest",
        "metrics.aggregate": "0 * * * *", "failure-rate.check": "*/5 * * * *",
        "files.cleanup": "0 2 * * *", "logs.cleanup": "0 3 1 * *", "health.probe": "* * * * *"}


def test_config_validate_exits_78_on_a_bad_schedule(sqlite_cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[schedule]\nfiles.cleanup = "0 2 * *"\n')

    result = sqlite_cli("config", "validate", str(config))

    assert result.exit_code == 78
    assert result.one("error")["error"]["message"].startswith("schedule.files.cleanup: ")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[schedule]\nmetrics.aggregate = "5 * * * *"\n"metrics.aggregate" = "6 * * * *"\n',
         "schedule.metrics.aggregate"),
        ('[schedule]\n"failure-rate.check" = "5 * * * *"\nfailure_rate.check = "6 * * * *"\n',
         "schedule.failure-rate.check"),
        ('[heartbeat.jobs]\nfiles.cleanup = "http://127.0.0.1:9/a"\n'
         '"files.cleanup" = "http://127.0.0.1:9/b"\n', "heartbeat.jobs.files.cleanup"),
    ],
)
def test_a_job_written_dotted_and_quoted_is_a_config_error(
    sqlite_cli: Cli, tmp_path: Path, text: str, key: str
) -> None:
    config = tmp_path / "twice.toml"
    config.write_text(text)

    result = sqlite_cli("--config", str(config), "schedule", "show")

    assert result.exit_code == 78
    message = result.one("error")["error"]["message"]
    assert message.startswith(f"{key}: ") and "twice" in message
    assert "9/a" not in result.stdout and "9/b" not in result.stdout


def test_an_environment_variable_still_overrides_a_quoted_key(tmp_path: Path) -> None:
    jobs = load(tmp_path, '[schedule]\n"metrics.aggregate" = "5 * * * *"\n',
                {"OPSCTL_SCHEDULE__METRICS__AGGREGATE": "7 * * * *"})

    assert jobs["metrics.aggregate"] == "7 * * * *"
