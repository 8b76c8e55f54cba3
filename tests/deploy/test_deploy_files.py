"""The deployment files the repository ships are the renderings of the default
configuration, and the logrotate rule rotates what the crontab writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support import Cli, isolated_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Cli:
    return Cli(isolated_env(home, f"sqlite:///{tmp_path / 'opsctl.db'}"))


@pytest.mark.parametrize("target", ["systemd", "kubernetes"])
def test_shipped_files_are_the_rendering_of_the_defaults(
    cli: Cli, tmp_path: Path, target: str
) -> None:
    out = tmp_path / target
    assert cli("schedule", "render", "--target", target, "--out", str(out)).exit_code == 0
    shipped = ROOT / "deploy" / target

    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in out.iterdir())
    for path in out.iterdir():
        assert (shipped / path.name).read_text() == path.read_text(), path.name


def test_dockerfile_runs_opsctl_as_a_non_root_user_the_manifests_expect() -> None:
    text = (ROOT / "Dockerfile").read_text()
    manifests = (ROOT / "deploy" / "kubernetes" / "opsctl.yaml").read_text()

    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "RUN pip install ." in text and 'ENTRYPOINT ["opsctl"]' in text
    assert "USER 10001:10001" in text and "runAsUser: 10001" in manifests


def test_logrotate_rotates_the_job_logs(tmp_path: Path) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "health-probe.log").write_text('{"type": "health_probe"}\n')
    rule = (ROOT / "deploy" / "logrotate" / "opsctl").read_text()
    # The same rule, for a directory and user that exist on the test machine.
    config = tmp_path / "opsctl.logrotate"
    config.write_text(rule.replace("/var/log/opsctl", str(logs))
                      .replace("opsctl opsctl", "root root"))

    binary = shutil.which("logrotate") or "/usr/sbin/logrotate"  # sbin may not be on PATH
    subprocess.run([binary, "--force", "--state", str(tmp_path / "state"), str(config)],
                   check=True, capture_output=True)

    assert (logs / "health-probe.log.1").read_text() == '{"type": "health_probe"}\n'
    assert (logs / "health-probe.log").read_text() == ""
