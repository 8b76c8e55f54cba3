"""``[schedule]`` as a user crontab that runs as shipped.

cron starts jobs with a bare environment: its PATH does not find an opsctl installed in a
venv, so the binary is named by its absolute path (``[schedule] command``); each job gets
``timeout -k`` and a log file of its own under /var/log/opsctl, which logrotate rotates
(``deploy/logrotate/opsctl``).
"""

from __future__ import annotations

from pathlib import Path

from opsctl.deploy.jobs import KILL_AFTER, LOG_DIR, config_path, scheduled
from opsctl.domain.durations import format_duration
from opsctl.settings import Settings

FILE_NAME = "opsctl.crontab"

HEADER = """\
# opsctl's jobs for cron, made by `opsctl schedule render --target crontab` from [schedule].
# Install it as the opsctl user's crontab: crontab -u opsctl opsctl.crontab
# Times are UTC: cronie honours CRON_TZ; with another cron keep the host's clock on UTC.
# Each job writes JSON lines to its own log file; create the directory first with
#   install -d -o opsctl -g opsctl -m 0750 {log_dir}
# and rotate it with deploy/logrotate/opsctl. `timeout` sends SIGTERM (opsctl finishes the
# batch, writes its summary and exits 143), then SIGKILL {kill} later. Exit 75 means the
# previous run still holds the job's lock: a harmless skip.
SHELL=/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
CRON_TZ=UTC
OPSCTL_CONFIG={config}
"""


def render(settings: Settings) -> dict[str, str]:
    jobs = scheduled(settings)
    binary = settings.schedule.command
    width = max(len(job.cron) for job in jobs) + 2
    limit = max(len(job.command.timeout_text) for job in jobs)
    lines = [HEADER.format(log_dir=LOG_DIR, kill=format_duration(KILL_AFTER),
                           config=config_path(settings))]
    for job in jobs:
        command = job.command
        lines.append(f"# {command.job}: {command.description}.")
        if not job.cron:
            lines.append(f'# not scheduled ([schedule] {command.job} = "")')
            lines.append("")
            continue
        log = Path(LOG_DIR, f"{command.unit}.log")
        lines.append(
            f"{job.cron:<{width}}timeout -k {format_duration(KILL_AFTER)} "
            f"{command.timeout_text:<{limit}} {binary} {' '.join(command.args)} "
            f">> {log} 2>&1")
        lines.append("")
    return {FILE_NAME: "\n".join(lines).rstrip("\n") + "\n"}
