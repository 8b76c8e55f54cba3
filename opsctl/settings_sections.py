"""The sections of the configuration other than ``[health]``, and the validators they share.

Each section forbids unknown keys and carries its ranges as Field constraints, so the
loader in :mod:`opsctl.settings` can name the exact key at fault. A rule spanning two
keys raises :class:`InvalidKey` to blame the key a user has to change.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from opsctl.domain.durations import parse_duration


class InvalidKey(ValueError):
    """Raised by a section validator to blame one key of the section, not the section itself.

    Pydantic locates an error raised in a model validator at the model; the loader appends
    ``key`` so the user reads ``storage.bucket`` rather than ``storage``.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


DurationText = Annotated[str, AfterValidator(_check_duration)]
"""A DUR kept as written (``7d``), so ``config show`` prints what the user typed."""


def _check_http_url(value: SecretStr) -> SecretStr:
    # The value is never echoed: heartbeat URLs carry their token in the path.
    if not value.get_secret_value().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


HttpUrlSecret = Annotated[SecretStr, AfterValidator(_check_http_url)]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _identifier(value: str) -> str:
    # Table and column names are interpolated into SQL, so only plain identifiers pass.
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError("must be a plain identifier (letters, digits, underscore)")
    return value


def _table_name(value: str) -> str:
    if not all(_IDENTIFIER.fullmatch(part) for part in value.split(".", 1)):
        raise ValueError("must be a plain identifier, optionally schema-qualified (schema.table)")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: SecretStr | None = None
    password: SecretStr | None = None
    connect_timeout_s: float = Field(default=5, gt=0)
    statement_timeout_s: float = Field(default=300, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = value.get_secret_value().partition("://")[0].lower()
            if not scheme.startswith(("sqlite", "postgres")):
                raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> DatabaseSettings:
        if self.password is not None:
            url = self.url.get_secret_value() if self.url else ""
            if not url.lower().startswith("postgres") or not urlsplit(url).username:
                raise InvalidKey("password", "needs a PostgreSQL url that names a user")
        return self


class SourceColumns(_Section):
    id: Identifier = "id"
    export_id: Identifier = "export_id"
    user_id: Identifier = "user_id"
    format: Identifier = "format"
    status: Identifier = "status"
    conversation_count: Identifier = "conversation_count"
    duration_ms: Identifier = "duration_ms"
    file_size_bytes: Identifier = "file_size_bytes"
    file_path: Identifier = "file_path"
    error_type: Identifier = "error_type"
    error_message: Identifier = "error_message"
    created_at: Identifier = "created_at"
    expires_at: Identifier = "expires_at"

    @model_validator(mode="after")
    def _distinct(self) -> SourceColumns:
        seen: dict[str, str] = {}
        for column, name in self.model_dump().items():
            if name in seen:
                raise InvalidKey(column, f"maps to {name!r}, as {seen[name]} does")
            seen[name] = column
        return self


class SourceSettings(_Section):
    table: Annotated[str, AfterValidator(_table_name)] = "export_logs"
    columns: SourceColumns = Field(default_factory=SourceColumns)


class StorageSettings(_Section):
    backend: Literal["local", "s3"] = "local"
    root: Path | None = None
    bucket: str | None = None
    prefix: str = ""

    @field_validator("root", mode="before")
    @classmethod
    def _usable_root(cls, value: object) -> object:
        # Path("") is the current directory: files cleanup must never run there or at /.
        if isinstance(value, str) and value.strip() in ("", "/"):
            raise ValueError("must not be empty or /")
        return value

    @field_validator("prefix")
    @classmethod
    def _relative_prefix(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be relative and must not contain ..")
        return value

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> StorageSettings:
        if self.backend == "s3" and not self.bucket:
            raise InvalidKey("bucket", 'required when backend is "s3"')
        return self


class S3Settings(_Section):
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    connect_timeout_s: float = Field(default=5, gt=0)
    read_timeout_s: float = Field(default=30, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> S3Settings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            missing = "secret_access_key" if self.secret_access_key is None else "access_key_id"
            raise InvalidKey(missing, "access_key_id and secret_access_key go together")
        return self


class MetricsSettings(_Section):
    period: Literal["hourly", "daily"] = "hourly"
    warn_avg_duration_ms: float = Field(default=5000, ge=0)
    warn_exports_per_hour: float = Field(default=1000, ge=0)
    top_error_types: int = Field(default=5, ge=1, le=100)


class FailureRateSettings(_Section):
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


class FilesSettings(_Section):
    batch_size: int = Field(default=2000, ge=1, le=10_000)
    limit: int | None = Field(default=None, ge=1)


class LogsSettings(_Section):
    # 0 is allowed on purpose ("keep nothing"); a negative retention is a typo.
    retention_days: int = Field(default=30, ge=0, le=36500)
    archive: bool = False
    archive_uri: str | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    gzip_level: int = Field(default=1, ge=1, le=9)

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


class AlertsSettings(_Section):
    webhook_url: HttpUrlSecret | None = None
    cooldown_minutes: float = Field(default=30, ge=0)
    timeout_s: float = Field(default=5, gt=0)


class RunsSettings(_Section):
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
