"""Deeply nested TOML or JSON is a configuration error (78) in one line, never a
RecursionError traceback, for ``config validate`` and every command that loads config."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import Cli


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "deep.toml"
    path.write_text(body, encoding="utf-8")
    return path


DEEP = 5000


@pytest.mark.parametrize("body", [
    f"a = {'[' * DEEP}{']' * DEEP}\n",
    f"a = {'{b = ' * DEEP}1{'}' * DEEP}\n",
    f"[logs]\nbatch_size = {'[' * DEEP}{']' * DEEP}\n",
])
@pytest.mark.parametrize("command", [["config", "validate"], ["files", "cleanup"],
                                     ["health", "probe"], ["config", "show"]])
def test_thousands_deep_is_78_in_one_line(sqlite_cli: Cli, tmp_path: Path, body: str,
                                          command: list[str]) -> None:
    path = write(tmp_path, body)
    for output in ("json", "text"):
        result = sqlite_cli("--config", str(path), *command, output=output)
        assert result.exit_code == 78, result.stdout + result.stderr
        shown = result.stdout + result.stderr
        assert "Traceback" not in shown and "RecursionError" not in shown
        if output == "json":
            [event] = result.events
            assert event["type"] == "error" and event["exit_code"] == 78
            assert event["error"] == {"kind": "config",
                                      "message": f"{path}: invalid TOML: nested too deeply"}


def test_deep_but_readable_nesting_names_the_key(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, f"[logs]\nbatch_size = {'[' * 60}{']' * 60}\n")
    result = sqlite_cli("config", "validate", str(path))
    assert result.exit_code == 78
    [event] = result.events
    assert event["error"]["message"] == (
        f"{path}: logs.batch_size: nested more than 32 levels deep")


def test_deep_json_in_a_variable_is_78(sqlite_cli: Cli) -> None:
    deep = "[" * DEEP + "]" * DEEP
    result = sqlite_cli("config", "validate", env={"OPSCTL_HEALTH__CHECKS": deep})
    assert result.exit_code == 78, result.stdout
    [event] = result.events
    assert event["error"]["kind"] == "config"
    assert "nested too deeply" in event["error"]["message"]
    assert "Traceback" not in result.stdout + result.stderr


def test_ordinary_nesting_is_still_fine(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, '[[health.checks]]\nname = "db"\nkind = "database"\n'
                           '[[health.checks]]\nname = "api"\nkind = "http"\n'
                           'url = "http://127.0.0.1:9/"\nexpect_status = [200, 204]\n')
    assert sqlite_cli("config", "validate", str(path)).exit_code == 0


@pytest.mark.parametrize("value", ["-1", "x", "600001"])
def test_a_bad_batch_pause_is_78_naming_the_key(sqlite_cli: Cli, value: str) -> None:
    result = sqlite_cli("config", "validate", env={"OPSCTL_FILES__BATCH_PAUSE_MS": value})
    assert result.exit_code == 78
    assert "files.batch_pause_ms" in result.one("error")["error"]["message"]
