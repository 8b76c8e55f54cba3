"""A reader that goes away (``| true``, ``| head -1``) ends the output quietly: no
``--- Logging error ---``, no ``BrokenPipeError`` traceback, exit 141 or 0."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import Cli, export_row, insert_exports, isolated_env

from opsctl.adapters.db.database import Database
from opsctl.cli.main import main

COMMANDS = [
    ["metrics", "aggregate", "--window", "30d"], ["metrics", "report", "--since", "30d"],
    ["failure-rate", "check", "--dry-run"], ["files", "cleanup", "--dry-run"],
    ["logs", "stats"], ["logs", "cleanup", "--dry-run"], ["health", "probe"],
    ["runs", "list"], ["runs", "stats"], ["db", "init"], ["demo", "seed", "--dry-run"],
    ["config", "show"], ["config", "validate"], ["--version"],
    ["logs", "stats", "--no-such-flag"], ["failure-rate", "check"],
]


class ClosedPipe(io.StringIO):
    """stdout whose reader has gone: every write fails as a real closed pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("pipe")
    url = f"sqlite:///{home / 'opsctl.db'}"
    Database(url).engine.dispose()
    insert_exports(url, [export_row(), export_row(status="failed")])
    cli = Cli(isolated_env(home, url))
    for _ in range(30):  # enough history for runs list to fill a pipe's first read
        cli("failure-rate", "check")
    return {**os.environ, **isolated_env(home, url), "OPSCTL_STORAGE__ROOT": str(home)}


def closed_reader(args: list[str], env: dict[str, str], keep_lines: int) -> tuple[int, str]:
    """Run opsctl with stdout into a pipe whose reader takes ``keep_lines`` lines and
    closes it, as ``| head -N`` (``| true`` is 0 lines)."""
    process = subprocess.Popen([sys.executable, "-m", "opsctl", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    with process:
        for _ in range(keep_lines):
            process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        return process.wait(timeout=120), stderr


@pytest.mark.parametrize("output", ["json", "text"])
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_is_quiet_on_a_closed_stdout(env: dict[str, str], args: list[str],
                                                    output: str) -> None:
    stderr = io.StringIO()
    code = main([f"--output={output}", *args], environ=env, stdout=ClosedPipe(),
                stderr=stderr)
    text = stderr.getvalue()
    assert "Logging error" not in text and "BrokenPipe" not in text, text
    assert "Traceback" not in text, text
    if output == "json" or args[-1] not in ("--no-such-flag",):
        assert code == 141, text  # every command writes to stdout: the write failed
    else:
        assert code == 64 and "No such option" in text  # its error went to stderr


@pytest.mark.parametrize("args", [["--help"], ["runs", "--help"], ["--output=json", "runs",
                                                                   "list"],
                                  ["--output=text", "runs", "list"]], ids=" ".join)
def test_closed_pipe_is_quiet_in_a_real_process(env: dict[str, str], args: list[str]) -> None:
    code, stderr = closed_reader(args, env, keep_lines=0)
    assert stderr == ""
    assert code in (0, 141)


@pytest.mark.parametrize("output", ["json", "text"])
def test_head_one_of_a_long_listing(env: dict[str, str], output: str) -> None:
    code, stderr = closed_reader([f"--output={output}", "runs", "list", "--limit", "30"], env,
                                 keep_lines=1)
    assert stderr == ""
    assert code in (0, 141)


def test_a_job_whose_reader_left_still_finishes_and_is_recorded(env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    code, stderr = closed_reader(["--output=json", "failure-rate", "check"], env, 0)
    assert (code, stderr) == (141, "")
    listed = subprocess.run([sys.executable, "-m", "opsctl", "--output=json", "runs", "list",
                             "--limit", "1"], env=env, capture_output=True, text=True,
                            check=True)
    assert '"job": "failure-rate.check"' in listed.stdout
