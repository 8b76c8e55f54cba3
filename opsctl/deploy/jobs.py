"""What each scheduled job runs and how long it may take, shared by every target.

The limits are the runbook's: a frequent job must end well before its next run (a late one
would only be skipped with exit 75), a cleanup may take hours. ``timeout`` (cron),
``TimeoutStartSec`` (systemd) and ``activeDeadlineSeconds`` (Kubernetes) all send SIGTERM
first, on which opsctl finishes its batch, writes its summary and exits 143.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from opsctl.domain.durations import format_duration
from opsctl.settings import Settings

DEFAULT_CONFIG_PATH = Path("/etc/opsctl/config.toml")
LOG_DIR = Path("/var/log/opsctl")
KILL_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class JobCommand:
    job: str
    args: tuple[str, ...]
    timeout: timedelta
    cleanup: bool  # heavy I/O: run it niced, idle I/O class
    description: str

    @property
    def unit(self) -> str:
        """``metrics.aggregate`` → ``metrics-aggregate`` (systemd units, log files, k8s)."""
        return self.job.replace(".", "-")

    @property
    def timeout_text(self) -> str:
        return format_duration(self.timeout)


COMMANDS = {
    command.job: command for command in (
        JobCommand("metrics.aggregate", ("metrics", "aggregate", "--store"),
                   timedelta(minutes=10), False,
                   "metrics of the hour that just ended, stored as a rollup"),
        JobCommand("failure-rate.check", ("failure-rate", "check"), timedelta(minutes=4),
                   False, "failure-rate alert over the last 60 minutes (webhook, cooldown)"),
        JobCommand("files.cleanup", ("files", "cleanup"), timedelta(hours=2), True,
                   "delete expired export files"),
        JobCommand("logs.cleanup", ("logs", "cleanup"), timedelta(hours=6), True,
                   "delete log rows past the retention ([logs] archive: archived first)"),
        JobCommand("health.probe", ("health", "probe"), timedelta(seconds=50), False,
                   "health probe"),
    )
}


@dataclass(frozen=True)
class Scheduled:
    command: JobCommand
    cron: str  # "" when the job is not scheduled


def scheduled(settings: Settings) -> list[Scheduled]:
    """Every job of ``[schedule]`` in the runbook's order, scheduled or not."""
    return [Scheduled(COMMANDS[job], cron) for job, cron in settings.schedule.jobs().items()]


def config_path(settings: Settings) -> Path:
    """The config file the deployed jobs read: the one rendered from, else /etc/opsctl."""
    loaded = settings.config_file
    return loaded.resolve() if loaded is not None else DEFAULT_CONFIG_PATH
