"""``[schedule]`` as systemd units: ``opsctl-<job>.service`` (oneshot) and ``.timer``.

The timer's ``OnCalendar=`` lines fire at exactly the cron expression's times (see
:mod:`opsctl.domain.oncalendar`), in UTC; ``Persistent=true`` runs a job missed while the
machine was off at the next boot. ``RandomizedDelaySec`` spreads hourly-or-rarer jobs of
many hosts a little, never more than half the grace, so it cannot make a job overdue; jobs
that run more often get none (their window is the last few minutes, a delay would blur it).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from opsctl.deploy.jobs import KILL_AFTER, JobCommand, Scheduled, config_path, scheduled
from opsctl.domain.oncalendar import on_calendar
from opsctl.domain.schedules import CronSchedule
from opsctl.settings import Settings

# Where the units keep opsctl's state: the default SQLite database and export root land in
# /var/lib/opsctl, the one directory ProtectSystem=strict leaves writable.
STATE_DIR = Path("/var/lib/opsctl")


def _seconds(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


def render(settings: Settings) -> dict[str, str]:
    files: dict[str, str] = {}
    for job in scheduled(settings):
        if not job.cron:
            continue
        name = f"opsctl-{job.command.unit}"
        files[f"{name}.service"] = _service(job.command, settings)
        files[f"{name}.timer"] = _timer(job, name, settings)
    return files


def _writable_paths(command: JobCommand, settings: Settings) -> list[str]:
    """Paths outside the state directory a job must write: the export root it deletes
    from, the local archive it writes to."""
    paths = []
    root = settings.storage.root
    if command.job == "files.cleanup" and settings.storage.backend == "local" and root:
        paths.append(str(root))
    if command.job == "logs.cleanup" and (settings.logs.archive_uri or "").startswith("file://"):
        paths.append(str(settings.logs.archive_uri).removeprefix("file://"))
    return [f"-{path}" for path in paths]  # "-": a path that does not exist yet is no error


def _service(command: JobCommand, settings: Settings) -> str:
    args = " ".join(command.args)
    lines = [
        "# Made by `opsctl schedule render --target systemd` from [schedule].",
        "[Unit]",
        f"Description=opsctl {command.job}: {command.description}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "User=opsctl",
        "Group=opsctl",
        f"Environment=OPSCTL_CONFIG={config_path(settings)}",
        f"Environment=XDG_STATE_HOME={STATE_DIR.parent} XDG_DATA_HOME={STATE_DIR.parent}",
        f"ExecStart={settings.schedule.command} --output json {args}",
        "# 1 (warning), 2 (critical finding) and 75 (skipped: the previous run still holds",
        "# the lock) mean the job ran as designed; 3 and above are failures.",
        "SuccessExitStatus=1 2 75",
        f"TimeoutStartSec={_seconds(command.timeout)}",
        "# SIGTERM first: opsctl finishes its batch, writes its summary and exits 143.",
        f"TimeoutStopSec={_seconds(KILL_AFTER)}",
    ]
    if command.cleanup:
        lines += ["Nice=10", "IOSchedulingClass=idle"]
    lines += [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        f"StateDirectory={STATE_DIR.name}",
    ]
    writable = _writable_paths(command, settings)
    if writable:
        lines.append(f"ReadWritePaths={' '.join(writable)}")
    return "\n".join(lines) + "\n"


def _randomized_delay(schedule: CronSchedule, grace: timedelta) -> timedelta | None:
    interval = schedule.shortest_interval()
    if interval < timedelta(hours=1):
        return None
    return min(grace / 2, interval / 10, timedelta(minutes=5))


def _timer(job: Scheduled, name: str, settings: Settings) -> str:
    schedule = CronSchedule(job.cron)
    lines = [
        "# Made by `opsctl schedule render --target systemd` from [schedule].",
        "[Unit]",
        f"Description=Run opsctl {job.command.job} on its schedule ({job.cron}, UTC)",
        "",
        "[Timer]",
        *(f"OnCalendar={value}" for value in on_calendar(schedule)),
        "Persistent=true",
        "AccuracySec=1s",
    ]
    delay = _randomized_delay(schedule, settings.schedule.grace_td)
    if delay is not None:
        lines.append(f"RandomizedDelaySec={_seconds(delay)}")
    lines += [f"Unit={name}.service", "", "[Install]", "WantedBy=timers.target"]
    return "\n".join(lines) + "\n"
