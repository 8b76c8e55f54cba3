"""The sections of what watches opsctl: ``[heartbeat]`` and ``[prometheus]``.

Heartbeat URLs carry their ping key in the path, so they are secrets: validators never
quote them, and :mod:`opsctl.settings.secrets` scrubs every URL a job may ping.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from opsctl.domain.job_names import JOB_NAMES
from opsctl.settings.fields import InvalidKey, Section

PLACEHOLDERS = frozenset({"job"})
# Every job the runner runs, so each can have its own heartbeat.
WATCHED_JOBS: tuple[str, ...] = JOB_NAMES


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be pinged, in words that do not repeat it; None when it can."""
    if any(c.isspace() for c in url):
        return "must be a URL without spaces"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "has an invalid port"
    return None


def template_problem(template: str) -> str | None:
    """A URL template may use ``{job}`` and nothing else."""
    try:
        fields = [name for _, name, spec, _ in string.Formatter().parse(template)
                  if name is not None]
    except ValueError:
        return "has an unbalanced { or } (only {job} may be used)"
    unknown = sorted({name for name in fields if name not in PLACEHOLDERS})
    if unknown:
        return (f"unknown placeholder {', '.join('{' + n + '}' for n in unknown)} "
                "(only {job} may be used)")
    return url_problem(template.replace("{job}", "job"))


def job_slug(job: str) -> str:
    """``files.cleanup`` as it goes into a URL or a check name: ``files-cleanup``."""
    return job.replace(".", "-")


def flatten_job_keys(value: Any) -> Any:
    """``metrics.aggregate = ...`` in TOML is a nested table; ``"metrics.aggregate" = ...``
    is a quoted key. Both mean the same job."""
    if not isinstance(value, Mapping):
        return value
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, item in node.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, Mapping):
                walk(name, item)
            else:
                flat[name] = item

    walk("", value)
    return flat


class HeartbeatSettings(Section):
    url: SecretStr | None = None
    jobs: dict[str, SecretStr] = Field(default_factory=dict)
    style: Literal["healthchecks", "cronitor"] = "healthchecks"
    timeout_s: float = Field(default=5, gt=0, le=300)

    @field_validator("jobs", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        return flatten_job_keys(value)

    @field_validator("url")
    @classmethod
    def _template(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            problem = template_problem(value.get_secret_value())
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _job_urls(self) -> HeartbeatSettings:
        for job, url in self.jobs.items():
            if job not in WATCHED_JOBS:
                raise InvalidKey(f"jobs.{job}",
                                 f"unknown job; expected one of: {', '.join(WATCHED_JOBS)}")
            problem = template_problem(url.get_secret_value())
            if problem:
                raise InvalidKey(f"jobs.{job}", problem)
        return self

    def url_for(self, job: str) -> str | None:
        """The job's own URL, else the template filled in, else None (no heartbeat)."""
        own = self.jobs.get(job)
        template = own or self.url
        if template is None:
            return None
        return template.get_secret_value().replace("{job}", job_slug(job))


class PrometheusSettings(Section):
    textfile_dir: Path | None = None
    pushgateway_url: str | None = None
    timeout_s: float = Field(default=5, gt=0, le=300)

    @field_validator("pushgateway_url")
    @classmethod
    def _pushgateway(cls, value: str | None) -> str | None:
        if value is not None:
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @property
    def configured(self) -> bool:
        return self.textfile_dir is not None or self.pushgateway_url is not None


def textfile_dir_problem(path: Path) -> str | None:
    """Why node_exporter will not find opsctl's metrics in ``path``; for ``config validate``
    (a run only warns, so a missing directory must be caught before it is deployed)."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None
