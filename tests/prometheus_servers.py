"""The real Prometheus servers Debian ships, each started on a free loopback port with a
temporary directory and stopped by its PID: Pushgateway, Alertmanager, node_exporter.

Loaded from the root conftest (``pytest_plugins``). A missing binary is ``unavailable()``:
a skip locally, a failure in CI, like a PostgreSQL that is not there.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import HttpServer, unavailable

PUSHGATEWAY = "prometheus-pushgateway"
ALERTMANAGER = "prometheus-alertmanager"
NODE_EXPORTER = "prometheus-node-exporter"
PROMTOOL = "promtool"
INSTALL_HINT = ("apt-get install -y prometheus-pushgateway prometheus-alertmanager "
                "prometheus prometheus-node-exporter")


def binary(name: str) -> str:
    path = shutil.which(name, path="/usr/bin:/usr/local/bin:/bin")
    if path is None:
        unavailable(f"{name} is not installed ({INSTALL_HINT})")
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return str(response.read().decode())


def http_json(url: str) -> Any:
    return json.loads(http_get(url))


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start(args: list[str], port: int, ready_path: str, log: Path) -> Iterator[Server]:
    """Start, wait until ``ready_path`` answers, yield, then stop by PID."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"{args[0]} exited with {process.returncode}: {log.read_text()}")
            try:
                http_get(url + ready_path, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{args[0]} did not get ready: {log.read_text()}")
                time.sleep(0.1)
        yield Server(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    yield from start([binary(PUSHGATEWAY), f"--web.listen-address=127.0.0.1:{port}"],
                     port, "/-/ready", tmp_path / "pushgateway.log")


@pytest.fixture
def alertmanager(tmp_path: Path, http_server: HttpServer) -> Iterator[Server]:
    """Routes every alert at once to a webhook receiver: the ``http_server`` fixture."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: hook\n  group_by: [alertname, opsctl_job, check]\n"
        "  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: {http_server.url}/alertmanager\n        send_resolved: true\n")
    port = free_port()
    storage = tmp_path / "alertmanager-data"
    storage.mkdir()
    yield from start([binary(ALERTMANAGER), f"--config.file={config}",
                      f"--storage.path={storage}", f"--web.listen-address=127.0.0.1:{port}",
                      "--cluster.listen-address="],
                     port, "/-/ready", tmp_path / "alertmanager.log")


@pytest.fixture
def textfile_dir(tmp_path: Path) -> Path:
    path = tmp_path / "textfile"
    path.mkdir()
    return path


@pytest.fixture
def node_exporter(tmp_path: Path, textfile_dir: Path) -> Iterator[Server]:
    port = free_port()
    yield from start([binary(NODE_EXPORTER), f"--web.listen-address=127.0.0.1:{port}",
                      "--collector.disable-defaults", "--collector.textfile",
                      f"--collector.textfile.directory={textfile_dir}"],
                     port, "/metrics", tmp_path / "node_exporter.log")


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary(PROMTOOL), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)
