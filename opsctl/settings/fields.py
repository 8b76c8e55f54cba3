"""Field types and validators shared by every section of the configuration.

Each section forbids unknown keys and carries its ranges as Field constraints, so the
loader in :mod:`opsctl.settings.loading` can name the exact key at fault. A rule spanning
two keys raises :class:`InvalidKey` to blame the key a user has to change.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr

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


def table_name(value: str) -> str:
    if not all(_IDENTIFIER.fullmatch(part) for part in value.split(".", 1)):
        raise ValueError("must be a plain identifier, optionally schema-qualified (schema.table)")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


class Section(BaseModel):
    """A configuration section: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid")
