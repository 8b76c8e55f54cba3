"""The effective configuration, and the values derived from it that need the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from opsctl import locations
from opsctl.settings.data import DatabaseSettings, S3Settings, SourceSettings, StorageSettings
from opsctl.settings.fields import InvalidKey
from opsctl.settings.health import FreshnessCheck, HealthSettings
from opsctl.settings.jobs import (
    AlertsSettings,
    FailureRateSettings,
    FilesSettings,
    LogsSettings,
    MetricsSettings,
    RunsSettings,
)
from opsctl.settings.monitoring import HeartbeatSettings, PrometheusSettings
from opsctl.settings.schedule import ScheduleSettings


class Settings(BaseSettings):
    """The effective configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="OPSCTL_", env_nested_delimiter="__", case_sensitive=False, extra="forbid"
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    failure_rate: FailureRateSettings = Field(default_factory=FailureRateSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    runs: RunsSettings = Field(default_factory=RunsSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    heartbeat: HeartbeatSettings = Field(default_factory=HeartbeatSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)

    # Only the variables the default locations depend on, never the whole environment.
    _location_env: dict[str, str] | None = PrivateAttr(default=None)
    _config_file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _freshness_jobs_are_scheduled(self) -> Settings:
        # max_age = "schedule" judges the job by its [schedule] entry: there must be one.
        for index, check in enumerate(self.health.checks):
            unscheduled = not self.schedule.cron(getattr(check, "job", ""))
            if isinstance(check, FreshnessCheck) and check.by_schedule and unscheduled:
                raise InvalidKey(f"health.checks[{index}].max_age",
                                     f'"schedule" needs a [schedule] entry for {check.job}, '
                                     "which is not scheduled")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env file and no secrets dir: one file and the environment are the whole story.
        return init_settings, env_settings

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from, if any."""
        return self._config_file


def _locations_env(settings: Settings, environ: Mapping[str, str] | None) -> Mapping[str, str]:
    if environ is not None:
        return environ
    recorded = settings._location_env
    return recorded if recorded is not None else os.environ


def database_url(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The URL to connect with: SQLite default filled in, password injected, psycopg chosen.

    ``environ`` defaults to the environment the settings were loaded from.
    """
    configured = settings.database.url
    if configured is None:
        return locations.default_database_url(_locations_env(settings, environ))
    url = configured.get_secret_value()
    scheme, sep, rest = url.partition("://")
    if scheme.lower() in ("postgres", "postgresql"):
        url = f"postgresql+psycopg{sep}{rest}"
    if settings.database.password is not None:
        url = set_password(url, quote(settings.database.password.get_secret_value(), safe=""))
    return url


def storage_root(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The local storage root, defaulting under the XDG data directory; ``~`` expanded."""
    env = _locations_env(settings, environ)
    root = settings.storage.root
    if root is None:
        return locations.default_storage_root(env)
    if root.parts and root.parts[0] == "~":
        home = env.get("HOME")
        return (Path(home) if home else Path.home()).joinpath(*root.parts[1:])
    return root


def set_password(url: str, password: str) -> str:
    # String surgery rather than urlsplit().geturl(), which rewrites sqlite:////abs paths.
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    user = netloc.rpartition("@")[0].partition(":")[0]
    return f"{scheme}{sep}{user}:{password}@{netloc.rpartition('@')[2]}{slash}{tail}"
