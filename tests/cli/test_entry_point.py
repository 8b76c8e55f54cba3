"""The entry point's contract: exit codes, JSON-only stdout, light startup, no secrets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import Cli, isolated_env

from opsctl import __version__

HEAVY = ("sqlalchemy", "psycopg", "boto3", "botocore", "httpx", "pydantic_settings", "jinja2")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def opsctl(home: Path, sqlite_url: str) -> Cli:
    return Cli(isolated_env(home, sqlite_url))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["metrics", "--help"]])
def test_help_and_version_import_no_driver_or_http_client(args: list[str]) -> None:
    probe = (
        "import sys, io\n"
        "from opsctl.cli.main import main\n"
        f"code = main({args!r}, environ={{}}, stdout=io.StringIO(), stderr=io.StringIO())\n"
        f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def test_version(opsctl: Cli) -> None:
    result = opsctl("--version", output=None)
    assert (result.exit_code, result.stdout.strip()) == (0, f"opsctl {__version__}")


def test_help_lists_every_command_group(opsctl: Cli) -> None:
    proc = subprocess.run([sys.executable, "-m", "opsctl", "--help"], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "COLUMNS": "120"})
    assert proc.returncode == 0
    for group in ("metrics", "failure-rate", "files", "logs", "health", "runs", "db", "demo",
                  "config"):
        assert f" {group} " in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["bogus-command"],
        ["--output", "xml", "db", "init"],
        ["--log-level", "loud", "db", "init"],
        ["db", "init", "--bogus"],
        ["config"],
    ],
)
def test_usage_errors_exit_64_with_one_error_event(opsctl: Cli, args: list[str]) -> None:
    result = opsctl(*args)
    assert result.exit_code == 64
    event = result.events[-1]
    assert event["type"] == "error" and event["exit_code"] == 64
    assert event["error"]["kind"] == "usage" and event["error"]["message"]


def test_bad_env_output_mode_is_a_usage_error(opsctl: Cli) -> None:
    assert opsctl("db", "init", env={"OPSCTL_OUTPUT": "yaml"}, output=None).exit_code == 64


def test_json_mode_stdout_carries_only_json_lines(opsctl: Cli) -> None:
    result = opsctl("db", "init")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines and all(json.loads(line)["run_id"] for line in lines)
    event = result.one("db_init")
    for field in ("timestamp", "level", "message", "logger", "type", "job", "run_id", "host",
                  "version"):
        assert field in event
    assert event["state"] == "ok" and event["exit_code"] == 0
    assert "status" not in event


def test_db_init_is_idempotent(opsctl: Cli) -> None:
    first, second = opsctl("db", "init").one("db_init"), opsctl("db", "init").one("db_init")
    assert first["applied_versions"] == [1, 2] and second["applied_versions"] == []


def test_text_mode_writes_no_json(opsctl: Cli) -> None:
    result = opsctl("db", "init", output="text")
    assert result.exit_code == 0
    assert "schema" in result.stdout and not result.stdout.lstrip().startswith("{")


def test_bad_config_exits_78_and_names_the_key(opsctl: Cli, tmp_path: Path) -> None:
    config = tmp_path / "opsctl.toml"
    config.write_text("[failure_rate]\nthreshold = 1.5\n")
    result = opsctl("--config", str(config), "db", "init")
    assert result.exit_code == 78
    event = result.one("error")
    assert event["error"]["kind"] == "config" and event["exit_code"] == 78
    assert "failure_rate.threshold" in event["error"]["message"]


def test_missing_config_file_exits_78(opsctl: Cli, tmp_path: Path) -> None:
    result = opsctl("db", "init", env={"OPSCTL_CONFIG": str(tmp_path / "nope.toml")})
    assert result.exit_code == 78
    assert "nope.toml" in result.one("error")["error"]["message"]


def test_config_validate_for_ci(opsctl: Cli, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("[logs]\nretention_days = 45\n")
    bad.write_text("[logs]\nretention_days = -1\n")
    assert opsctl("config", "validate", str(good)).one("config_valid")["exit_code"] == 0
    result = opsctl("config", "validate", str(bad))
    assert result.exit_code == 78
    assert "logs.retention_days" in result.one("error")["error"]["message"]


def test_config_validate_example_file(opsctl: Cli) -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    assert opsctl("config", "validate", str(example)).exit_code == 0


def test_config_show_redacts_every_secret(opsctl: Cli, tmp_path: Path) -> None:
    config = tmp_path / "opsctl.toml"
    config.write_text(
        '[alerts]\nwebhook_url = "https://hooks.example.com/services/T0K3N-s3cr3t"\n'
    )
    env = {
        # The environment overrides the file, as cron's environment would.
        "OPSCTL_DATABASE__URL": "postgresql+psycopg://app:pw-db-s3cr3t@db.internal:5432/exports",
        "OPSCTL_S3__ACCESS_KEY_ID": "AKIA-s3cr3t",
        "OPSCTL_S3__SECRET_ACCESS_KEY": "aws-s3cr3t-key",
    }
    for output in ("json", "text"):
        result = opsctl("--config", str(config), "config", "show", env=env, output=output)
        assert result.exit_code == 0
        everything = result.stdout + result.stderr
        assert "s3cr3t" not in everything
    shown = opsctl("--config", str(config), "config", "show", env=env).one("config")["config"]
    assert shown["database"]["url"] == "postgresql+psycopg://app:***@db.internal:5432/exports"


@pytest.mark.postgres
def test_unreachable_database_exits_3_with_an_error_event_and_no_password(
    opsctl: Cli,
) -> None:
    url = f"postgresql+psycopg://app:pw-s3cr3t@127.0.0.1:{closed_port()}/exports"
    result = opsctl("db", "init", env={"OPSCTL_DATABASE__URL": url,
                                       "OPSCTL_DATABASE__CONNECT_TIMEOUT_S": "1"})
    assert result.exit_code == 3
    event = result.one("error")
    assert event["error"]["kind"] == "database_unavailable"
    assert "pw-s3cr3t" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_no_color_and_text_output_have_no_escape_codes(opsctl: Cli) -> None:
    result = opsctl("--no-color", "db", "init", output="text", env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout


def test_real_process_exit_code_for_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "opsctl", "--output", "json", "--bogus"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 64
    assert json.loads(proc.stdout.splitlines()[-1])["type"] == "error"
    assert "Traceback" not in proc.stderr


def test_dry_run_db_init_writes_nothing(opsctl: Cli, home: Path) -> None:
    result = opsctl("db", "init", env={"OPSCTL_DRY_RUN": "1"})
    assert result.exit_code == 0
    event = result.one("db_init")
    assert (event["state"], event["pending_versions"], event["applied_versions"]) == (
        "dry_run", [1, 2], [])
    assert not any(p.is_file() for p in home.rglob("*"))


@pytest.mark.parametrize("value", ["1", "yes", "maybe", "TRUE"])
def test_any_dry_run_value_but_an_explicit_off_is_on(opsctl: Cli, value: str) -> None:
    event = opsctl("db", "init", env={"OPSCTL_DRY_RUN": value}).one("db_init")
    assert event["dry_run"] is True


def test_group_without_subcommand_is_a_usage_error_with_json_only(opsctl: Cli) -> None:
    result = opsctl("logs")
    assert result.exit_code == 64
    assert [e["type"] for e in result.events] == ["error"]


@pytest.mark.parametrize("args", [["logs", "stats", "--retention-days", "1000000"],
                                  ["failure-rate", "check", "--window", "100000000d"],
                                  ["metrics", "aggregate", "--window", "999999999d"]])
def test_absurd_durations_are_usage_errors_not_crashes(opsctl: Cli, args: list[str]) -> None:
    result = opsctl(*args)
    assert result.exit_code == 64
    assert result.one("error")["error"]["kind"] == "usage"
