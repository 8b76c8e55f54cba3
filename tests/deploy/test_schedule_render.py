"""``opsctl schedule render``: every target checked by the real tool that will run it."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from support import Cli, isolated_env

from opsctl.domain.oncalendar import on_calendar
from opsctl.domain.schedules import CronSchedule

ROOT = Path(__file__).resolve().parents[2]
OPSCTL = Path(sys.executable).parent / "opsctl"
DEFAULTS = {"metrics.aggregate": "0 * * * *", "failure-rate.check": "*/5 * * * *",
            "files.cleanup": "0 2 * * *", "logs.cleanup": "0 3 1 * *",
            "health.probe": "* * * * *"}
KUBERNETES_VERSION = "1.37.0"


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Cli:
    return Cli(isolated_env(home, f"sqlite:///{tmp_path / 'opsctl.db'}"))


# --- crontab ------------------------------------------------------------------------------


def test_crontab_example_is_the_rendering_of_the_default_configuration(cli: Cli) -> None:
    result = cli("schedule", "render", "--target", "crontab", output=None)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (ROOT / "crontab.example").read_text()


def test_crontab_lines_run_each_job_by_absolute_path_with_timeout_and_its_own_log(
    cli: Cli,
) -> None:
    text = cli("schedule", "render", "--target", "crontab", output="text").stdout
    entries = [line for line in text.splitlines()
               if line and not line.startswith("#") and "=" not in line.split()[0]]
    variables = dict(line.split("=", 1) for line in text.splitlines()
                     if re.match(r"^[A-Z_]+=", line))

    assert variables == {"SHELL": "/bin/sh", "PATH": "/usr/local/bin:/usr/bin:/bin",
                         "CRON_TZ": "UTC", "OPSCTL_CONFIG": "/etc/opsctl/config.toml"}
    assert len(entries) == 5
    logs = set()
    for line, (job, cron) in zip(entries, DEFAULTS.items(), strict=True):
        fields = line.split()
        assert " ".join(fields[:5]) == cron
        assert fields[5:8][:2] == ["timeout", "-k"]
        assert fields[9] == "/opt/opsctl/bin/opsctl"
        assert " ".join(fields[10:12]) == job.replace(".", " ")
        assert fields[-3:] == [">>", f"/var/log/opsctl/{job.replace('.', '-')}.log", "2>&1"]
        logs.add(fields[-2])
    assert len(logs) == 5


def test_crontab_of_a_configured_schedule_comments_out_disabled_jobs(
    cli: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "opsctl.toml"
    config.write_text('[schedule]\ncommand = "/usr/local/bin/opsctl"\n'
                      'files.cleanup = ""\n"health.probe" = "*/2 * * * *"\n')
    text = cli("--config", str(config), "schedule", "render", "--target", "crontab",
               output=None).stdout

    assert f"OPSCTL_CONFIG={config}" in text
    assert "files cleanup" not in text and '# not scheduled ([schedule] files.cleanup = "")' in (
        text)
    assert re.search(r"^\*/2 \* \* \* \* +timeout -k 30s 50s /usr/local/bin/opsctl health probe",
                     text, re.MULTILINE)


# --- systemd ------------------------------------------------------------------------------

CALENDAR_CASES = [
    *DEFAULTS.values(),
    "5-50/10 1-10/3 * jan-mar mon-fri",  # steps over ranges, names
    "15,45 */2 1,15 * *",  # lists and steps
    "0 0 1 * mon",  # day-of-month OR day-of-week: two OnCalendar lines
    "30 6 * * 0,6",  # weekend
    "0 0 * * 7",  # Sunday as 7
    "0 12 29 2 *",  # leap days only
    "0-10 22-23 * 12 5-7",  # ranges, Sunday as 7 in a range
    "7/20 * 10-20/5 */3 *",  # start/step without a range
]


def systemd_times(values: list[str], base: str, count: int) -> list[datetime]:
    """The union of the next ``count`` elapses of each OnCalendar value, by systemd itself."""
    found: set[datetime] = set()
    for value in values:
        out = subprocess.run(
            ["systemd-analyze", "calendar", f"--iterations={count}", f"--base-time={base}",
             value], capture_output=True, text=True, check=True).stdout
        for stamp in re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", out):
            found.add(datetime.fromisoformat(stamp).replace(tzinfo=UTC))
    return sorted(found)[:count]


@pytest.mark.parametrize("cron", CALENDAR_CASES)
def test_on_calendar_fires_exactly_when_cron_does(cron: str) -> None:
    schedule = CronSchedule.parse(cron)
    base = datetime(2026, 11, 26, 12, 7, 30, tzinfo=UTC)
    expected = schedule.next_runs(base, 12)

    assert systemd_times(on_calendar(schedule), "2026-11-26 12:07:30 UTC", 12) == expected


def test_both_day_fields_become_two_on_calendar_lines() -> None:
    assert on_calendar(CronSchedule.parse("0 0 1 * mon")) == [
        "*-*-01 00:00:00 UTC", "Mon *-*-* 00:00:00 UTC"]


def render_systemd(cli: Cli, tmp_path: Path, config_text: str = "") -> Path:
    config = tmp_path / "opsctl.toml"
    config.write_text(f'[schedule]\ncommand = "{OPSCTL}"\n{config_text}')
    out = tmp_path / "units"
    result = cli("--config", str(config), "schedule", "render", "--target", "systemd",
                 "--out", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    return out


def test_systemd_units_pass_systemd_analyze_verify(cli: Cli, tmp_path: Path) -> None:
    out = render_systemd(cli, tmp_path, '[storage]\nroot = "/srv/exports"\n')
    units = sorted(p.name for p in out.iterdir())

    assert units == sorted(f"opsctl-{job.replace('.', '-')}.{kind}"
                           for job in DEFAULTS for kind in ("service", "timer"))
    check = subprocess.run(["systemd-analyze", "verify", *units], cwd=out,
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stderr == "", check.stderr


def unit(path: Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_services_are_oneshot_with_success_codes_timeouts_and_hardening(
    cli: Cli, tmp_path: Path
) -> None:
    out = render_systemd(cli, tmp_path, '[storage]\nroot = "/srv/exports"\n')
    files = unit(out / "opsctl-files-cleanup.service")
    probe = unit(out / "opsctl-health-probe.service")

    assert files["Type"] == ["oneshot"] and files["SuccessExitStatus"] == ["1 2 75"]
    assert files["ExecStart"] == [f"{OPSCTL} --output json files cleanup"]
    assert files["TimeoutStartSec"] == ["7200s"] and probe["TimeoutStartSec"] == ["50s"]
    assert files["Nice"] == ["10"] and files["IOSchedulingClass"] == ["idle"]
    assert "Nice" not in probe
    for service in (files, probe):
        assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
        assert service["StateDirectory"] == ["opsctl"]
    assert files["ReadWritePaths"] == ["-/srv/exports"]


def test_timers_match_the_schedule_and_delay_only_where_harmless(
    cli: Cli, tmp_path: Path
) -> None:
    out = render_systemd(cli, tmp_path)
    timers = {job: unit(out / f"opsctl-{job.replace('.', '-')}.timer") for job in DEFAULTS}

    for job, cron in DEFAULTS.items():
        assert timers[job]["OnCalendar"] == on_calendar(CronSchedule.parse(cron))
        assert timers[job]["Persistent"] == ["true"]
        assert timers[job]["Unit"] == [f"opsctl-{job.replace('.', '-')}.service"]
    # Every minute and every 5 minutes: a random delay would blur their window.
    assert "RandomizedDelaySec" not in timers["health.probe"]
    assert "RandomizedDelaySec" not in timers["failure-rate.check"]
    assert timers["metrics.aggregate"]["RandomizedDelaySec"] == ["300s"]  # half of grace 10m


# --- kubernetes ---------------------------------------------------------------------------


def render_kubernetes(cli: Cli, tmp_path: Path) -> list[dict[str, object]]:
    config = tmp_path / "opsctl.toml"
    config.write_text('[schedule]\nimage = "registry.example/opsctl:1.2.3"\n'
                      'files.cleanup = ""\n')
    result = cli("--config", str(config), "schedule", "render", "--target", "kubernetes",
                 output=None)
    assert result.exit_code == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_kubernetes_manifests_validate_strictly(cli: Cli, tmp_path: Path) -> None:
    for doc in render_kubernetes(cli, tmp_path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_cron_jobs_follow_the_contract(cli: Cli, tmp_path: Path) -> None:
    docs = render_kubernetes(cli, tmp_path)
    config_map, *jobs = docs

    assert config_map["kind"] == "ConfigMap"
    assert [job["metadata"]["name"] for job in jobs] == [  # type: ignore[index]
        "opsctl-metrics-aggregate", "opsctl-failure-rate-check", "opsctl-logs-cleanup",
        "opsctl-health-probe"]
    for job in jobs:
        assert job["apiVersion"] == "batch/v1" and job["kind"] == "CronJob"
        spec = job["spec"]
        assert isinstance(spec, dict)
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] >= 10
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        job_spec = spec["jobTemplate"]["spec"]
        assert job_spec["activeDeadlineSeconds"] > 0
        container = job_spec["template"]["spec"]["containers"][0]
        assert container["image"] == "registry.example/opsctl:1.2.3"
        names = {var["name"] for var in container["env"]}
        assert {"OPSCTL_CONFIG", "OPSCTL_DATABASE__URL", "OPSCTL_DATABASE__PASSWORD",
                "OPSCTL_ALERTS__WEBHOOK_URL"} <= names
        secrets = [var for var in container["env"] if "valueFrom" in var]
        assert all(var["valueFrom"]["secretKeyRef"]["key"] == var["name"] for var in secrets)
    health = jobs[-1]["spec"]
    assert health["schedule"] == "* * * * *"  # type: ignore[index]
    assert health["startingDeadlineSeconds"] == 30  # type: ignore[index]
    assert health["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 50  # type: ignore[index]


# The contract's secrets (database password, webhook and heartbeat URLs, cloud keys), by the
# variable that sets each; config show masks every one of them.
SECRET_VARIABLES = {
    "OPSCTL_DATABASE__URL": "postgresql+psycopg://opsctl:pw@127.0.0.1:5432/app",
    "OPSCTL_DATABASE__PASSWORD": "pw",
    "OPSCTL_ALERTS__WEBHOOK_URL": "http://127.0.0.1:9/hooks/token",
    "OPSCTL_HEARTBEAT__URL": "http://127.0.0.1:9/ping/key/{job}",
    "OPSCTL_HEARTBEAT__JOBS": '{"files.cleanup": "http://127.0.0.1:9/ping/other-key"}',
    "OPSCTL_S3__ACCESS_KEY_ID": "AKIAEXAMPLE",
    "OPSCTL_S3__SECRET_ACCESS_KEY": "secret-key",
}


def test_every_secret_comes_from_the_secret_never_the_config_map(
    cli: Cli, tmp_path: Path
) -> None:
    for job in render_kubernetes(cli, tmp_path)[1:]:
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        from_secret = {var["name"] for var in container["env"] if "valueFrom" in var}
        assert set(SECRET_VARIABLES) <= from_secret, job["metadata"]["name"]  # type: ignore[index]


def test_the_secret_variables_are_configuration_keys_that_stay_secret(cli: Cli) -> None:
    result = cli("config", "show", env=SECRET_VARIABLES)

    assert result.exit_code == 0, result.stdout
    for name, value in SECRET_VARIABLES.items():
        if name != "OPSCTL_DATABASE__URL":
            assert value not in result.stdout, name
        else:
            assert ":pw@" not in result.stdout


def test_the_config_map_skeleton_loads_as_opsctl_configuration(
    cli: Cli, tmp_path: Path
) -> None:
    config_map = render_kubernetes(cli, tmp_path)[0]
    skeleton = tmp_path / "skeleton.toml"
    skeleton.write_text(config_map["data"]["config.toml"])  # type: ignore[index]

    result = cli("config", "validate", str(skeleton))

    assert result.exit_code == 0, result.stdout


# --- output and bad input -------------------------------------------------------------------


def test_without_out_only_the_text_goes_to_stdout_even_in_json_mode(cli: Cli) -> None:
    result = cli("--output", "json", "schedule", "render", "--target", "systemd", output=None)

    assert result.exit_code == 0
    assert result.stdout.startswith("# ==> opsctl-metrics-aggregate.service <==\n")
    assert '"type"' not in result.stdout


def test_out_writes_the_files_and_prints_the_summary(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    result = cli("schedule", "render", "--target", "crontab", "--out", str(out))

    assert result.exit_code == 0
    summary = result.one("schedule_rendered")
    assert summary["files"] == ["opsctl.crontab"] and summary["target"] == "crontab"
    assert (out / "opsctl.crontab").read_text() == (ROOT / "crontab.example").read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["dir"]  # no staging left


def test_out_into_an_existing_directory_keeps_other_files(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "units"
    out.mkdir()
    (out / "other.service").write_text("keep")
    (out / "opsctl-health-probe.timer").write_text("old")

    assert cli("schedule", "render", "--target", "systemd", "--out", str(out)).exit_code == 0
    assert (out / "other.service").read_text() == "keep"
    assert "OnCalendar=*-*-* *:*:00 UTC" in (out / "opsctl-health-probe.timer").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_unknown_target_is_a_usage_error(cli: Cli) -> None:
    result = cli("schedule", "render", "--target", "cron")

    assert result.exit_code == 64
    assert result.one("error")["error"]["kind"] == "usage"


@pytest.mark.parametrize("make", ["file", "under_a_file"])
def test_out_that_cannot_be_a_directory_is_a_clear_error_and_writes_nothing(
    cli: Cli, tmp_path: Path, make: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = blocker if make == "file" else blocker / "units"

    result = cli("schedule", "render", "--target", "systemd", "--out", str(out))

    assert result.exit_code == 64
    assert result.one("error")["error"]["message"].startswith(f"--out {out}: ")
    assert blocker.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if not p.name.startswith(".opsctl-render"))
