"""Signals through a real process: SIGTERM/SIGINT end a job with its summary and 143/130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HttpServer
from support import isolated_env


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_a_job_writes_the_summary_and_exits_with_its_code(
    sig: signal.Signals, code: int, home: Path, sqlite_url: str, http_server: HttpServer,
    tmp_path: Path,
) -> None:
    http_server.delay_s = 30  # the check hangs, so the signal arrives mid-job
    config = tmp_path / "opsctl.toml"
    config.write_text(
        "[health]\ntimeout_s = 60\n"
        f'[[health.checks]]\nname = "api"\nkind = "http"\nurl = "{http_server.url}/"\n'
        "timeout_s = 60\n"
    )
    env = {**isolated_env(home, sqlite_url), "OPSCTL_CONFIG": str(config)}
    with subprocess.Popen([sys.executable, "-m", "opsctl", "--output", "json", "health",
                           "probe"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        deadline = time.monotonic() + 20
        while not http_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert http_server.requests, "the probe never reached the check"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == code
    events = [json.loads(line) for line in stdout.splitlines()]
    summary = events[-1]
    assert summary["type"] == "health_probe"
    assert (summary["state"], summary["exit_code"]) == ("interrupted", code)
    assert "Traceback" not in stderr
