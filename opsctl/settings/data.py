"""The sections that say where the data is: ``[database]``, ``[source]``, ``[storage]``, ``[s3]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from opsctl.settings.fields import Identifier, InvalidKey, Section, table_name


class DatabaseSettings(Section):
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


class SourceColumns(Section):
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


class SourceSettings(Section):
    table: Annotated[str, AfterValidator(table_name)] = "export_logs"
    columns: SourceColumns = Field(default_factory=SourceColumns)


class StorageSettings(Section):
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


class S3Settings(Section):
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
