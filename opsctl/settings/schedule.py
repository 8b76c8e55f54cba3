"""The ``[schedule]`` section: when each job runs, the one source of truth that the crontab,
systemd and Kubernetes renderings and the dead man's switch all read.

Job names hold a dot, which TOML reads as a nested table when the key is written bare
(``metrics.aggregate = "0 * * * *"``) and as one key when it is quoted; the environment
gives ``OPSCTL_SCHEDULE__METRICS__AGGREGATE`` (nested, lower-case) and cannot spell the
``-`` of ``failure-rate``. All of these are folded into the job name before validation, so
every spelling means the same, and an unknown job is a configuration error naming its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_serializer, model_validator

from opsctl.domain.durations import parse_duration
from opsctl.domain.schedules import CronSchedule, InvalidCron
from opsctl.settings.fields import DurationText, InvalidKey, Section

# The runbook's schedule. Jobs added later default to "" (not scheduled).
DEFAULT_SCHEDULES: dict[str, str] = {
    "metrics.aggregate": "0 * * * *",
    "failure-rate.check": "*/5 * * * *",
    "files.cleanup": "0 2 * * *",
    "logs.cleanup": "0 3 1 * *",
    "health.probe": "* * * * *",
}
SCHEDULED_JOBS = tuple(DEFAULT_SCHEDULES)
# Where the README's production install puts the binary (a venv under /opt/opsctl).
DEFAULT_COMMAND = "/opt/opsctl/bin/opsctl"
DEFAULT_IMAGE = "opsctl:latest"
_OWN_KEYS = ("grace", "command", "image")


def _field(job: str) -> str:
    return job.replace(".", "__").replace("-", "_")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name not in _OWN_KEYS:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _job_name(key: str) -> str | None:
    """The job a key means, whatever its spelling (``failure_rate.check`` from the env)."""
    wanted = key.lower().replace("_", "-")
    return next((job for job in SCHEDULED_JOBS if job == wanted), None)


def job_key(key: str) -> str:
    """The one name a ``[schedule]`` key stands for, so two spellings can be compared."""
    return _job_name(key) or key


class ScheduleSettings(Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    grace: DurationText = "10m"
    command: str = DEFAULT_COMMAND
    image: str = Field(default=DEFAULT_IMAGE, min_length=1)
    metrics__aggregate: str = Field(default=DEFAULT_SCHEDULES["metrics.aggregate"],
                                    alias="metrics.aggregate")
    failure_rate__check: str = Field(default=DEFAULT_SCHEDULES["failure-rate.check"],
                                     alias="failure-rate.check")
    files__cleanup: str = Field(default=DEFAULT_SCHEDULES["files.cleanup"],
                                alias="files.cleanup")
    logs__cleanup: str = Field(default=DEFAULT_SCHEDULES["logs.cleanup"], alias="logs.cleanup")
    health__probe: str = Field(default=DEFAULT_SCHEDULES["health.probe"], alias="health.probe")

    @model_validator(mode="before")
    @classmethod
    def _job_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        folded: dict[str, Any] = {}
        for key, value in _flatten(data).items():
            if key in _OWN_KEYS:
                folded[key] = value
                continue
            job = _job_name(key)
            if job is None:
                raise InvalidKey(key, "unknown job; expected one of: "
                                 f"{', '.join(SCHEDULED_JOBS)} (or grace, command, image)")
            folded[job] = value
        return folded

    @field_validator("metrics__aggregate", "failure_rate__check", "files__cleanup",
                     "logs__cleanup", "health__probe")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not value.strip():
            return ""  # not scheduled
        try:
            return CronSchedule.parse(value).expression
        except InvalidCron as exc:
            raise ValueError(str(exc)) from None

    @field_validator("command")
    @classmethod
    def _absolute(cls, value: str) -> str:
        # cron's PATH finds nothing installed in a venv: the binary is named by its path.
        if not PurePosixPath(value).is_absolute():
            raise ValueError("must be an absolute path to the opsctl binary")
        # It is written into crontab lines and ExecStart= as it is: cron reads % as a
        # newline, and a space would split the path.
        if any(char.isspace() or char in "%\"'\\" for char in value):
            raise ValueError("must not contain spaces, quotes, backslashes or %")
        return value

    @model_serializer(mode="wrap")
    def _by_job_name(self, handler: Any) -> dict[str, Any]:
        # `config show` prints the keys as they are written in the file.
        data: dict[str, Any] = handler(self)
        return {key: data[key] for key in _OWN_KEYS} | {
            job: data[_field(job)] for job in SCHEDULED_JOBS}

    @property
    def grace_td(self) -> timedelta:
        return parse_duration(self.grace)

    def cron(self, job: str) -> str:
        """The job's expression; "" when it is not scheduled (or not a schedulable job)."""
        value: str = getattr(self, _field(job), "") if job in SCHEDULED_JOBS else ""
        return value

    def schedule(self, job: str) -> CronSchedule | None:
        cron = self.cron(job)
        return CronSchedule(cron) if cron else None

    def jobs(self) -> dict[str, str]:
        """Every schedulable job and its expression, in the runbook's order."""
        return {job: self.cron(job) for job in SCHEDULED_JOBS}
