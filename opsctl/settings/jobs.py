"""The sections of the jobs: ``[metrics]``, ``[failure_rate]``, ``[files]``, ``[logs]``,
``[alerts]`` and ``[runs]``."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from opsctl.domain.durations import parse_duration
from opsctl.settings.fields import DurationText, HttpUrlSecret, InvalidKey, Section
from opsctl.settings.guard import DeletionGuardKeys


class MetricsSettings(Section):
    period: Literal["hourly", "daily"] = "hourly"
    warn_avg_duration_ms: float = Field(default=5000, ge=0)
    warn_exports_per_hour: float = Field(default=1000, ge=0)
    top_error_types: int = Field(default=5, ge=1, le=100)


class FailureRateSettings(Section):
    window: DurationText = "60m"
    threshold: float = Field(default=0.10, ge=0, le=1)
    warning: float = Field(default=0.05, ge=0, le=1)
    min_samples: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _warning_below_threshold(self) -> FailureRateSettings:
        if self.warning > self.threshold:
            raise InvalidKey("warning", f"must not exceed threshold ({self.threshold})")
        return self

    @property
    def window_td(self) -> timedelta:
        return parse_duration(self.window)


class FilesSettings(DeletionGuardKeys):
    batch_size: int = Field(default=2000, ge=1, le=10_000)
    limit: int | None = Field(default=None, ge=1)
    # A pause between batches, so a big first cleanup is gentle on a busy primary.
    batch_pause_ms: int = Field(default=0, ge=0, le=600_000)


class LogsSettings(DeletionGuardKeys):
    # 0 is allowed on purpose ("keep nothing"); a negative retention is a typo.
    retention_days: int = Field(default=30, ge=0, le=36500)
    archive: bool = False
    archive_uri: str | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    gzip_level: int = Field(default=1, ge=1, le=9)
    # The guard's share of the whole table a run may delete (a clock that jumped ahead).
    max_delete_fraction: float = Field(default=0.9, gt=0, le=1)
    # A wait between batches, to spare a busy primary (pt-archiver's --sleep).
    batch_pause_ms: int = Field(default=0, ge=0, le=600_000)
    # Take partitions wholly older than the cutoff whole (detach + drop), not row by row.
    drop_partitions: bool = True

    @field_validator("archive_uri")
    @classmethod
    def _archive_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme == "s3" and parts.netloc:
                return value
            if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
                return value
            raise ValueError("must be s3://bucket[/prefix] or file:///absolute/dir")
        return value

    @model_validator(mode="after")
    def _archive_needs_uri(self) -> LogsSettings:
        if self.archive and not self.archive_uri:
            raise InvalidKey("archive_uri", "required when archive = true")
        return self


class AlertsSettings(Section):
    webhook_url: HttpUrlSecret | None = None
    cooldown_minutes: float = Field(default=30, ge=0)
    timeout_s: float = Field(default=5, gt=0)
    # Alertmanager's API v2 (the base URL, as its web UI is reached); no cooldown applies.
    alertmanager_url: str | None = None
    alertmanager_ttl: DurationText = "1h"

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("alertmanager_ttl")
    @classmethod
    def _positive_ttl(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError("must be longer than 0s")
        return value

    @property
    def alertmanager_ttl_td(self) -> timedelta:
        return parse_duration(self.alertmanager_ttl)


class RunsSettings(Section):
    retention_days: int = Field(default=90, ge=1, le=36500)
    window: DurationText = "7d"
    alert_failure_rate: float = Field(default=0.5, ge=0, le=1)
    alert_min_runs: int = Field(default=5, ge=1)
    alert_consecutive_failures: int = Field(default=3, ge=1)
    alert_max_avg_duration: DurationText = "5m"

    @property
    def window_td(self) -> timedelta:
        return parse_duration(self.window)

    @property
    def alert_max_avg_duration_td(self) -> timedelta:
        return parse_duration(self.alert_max_avg_duration)
