"""The ``[health]`` section and its ``[[health.checks]]``, one model per check kind.

A discriminated union on ``kind`` means a typo in a check's keys fails at load time with
the key named, instead of the check silently doing something else at 3 a.m.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from opsctl.domain.durations import parse_duration
from opsctl.domain.job_names import JobName
from opsctl.settings.fields import HttpUrlSecret, InvalidKey

CheckState = Literal["ok", "warning", "critical"]


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    timeout_s: float | None = Field(default=None, gt=0)


class _SeverityFlag(_Check):
    critical: bool = True

    @property
    def is_critical(self) -> bool:
        """Whether this check failing makes the probe ``unhealthy`` rather than ``degraded``."""
        return self.critical


class DatabaseCheck(_SeverityFlag):
    kind: Literal["database"]


class HttpCheck(_SeverityFlag):
    kind: Literal["http"]
    url: HttpUrlSecret
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] | None = None
    max_latency_ms: float | None = Field(default=None, gt=0)

    def status_ok(self, status: int) -> bool:
        """``expect_status`` unset means what a browser would call success: 2xx or 3xx."""
        if self.expect_status is None:
            return 200 <= status < 400
        return status in self.expect_status


class TcpCheck(_SeverityFlag):
    kind: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


class S3Check(_SeverityFlag):
    kind: Literal["s3"]
    bucket: str = Field(min_length=1)


class DiskCheck(_SeverityFlag):
    kind: Literal["disk"]
    path: Path
    min_free_percent: float = Field(default=10, ge=0, le=100)

    @field_validator("path", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # Path("") would silently become the current directory.
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value


class SqlCheck(_Check):
    """A scalar query judged against thresholds.

    The contract gives every check a boolean ``critical`` and the sql check a ``critical``
    threshold, so here ``critical`` is either: ``true``/``false`` is the severity flag, a
    number is the critical threshold (and the check is then critical). Nothing is lost: a
    non-critical check crossing its critical threshold would only ever be ``degraded``,
    which is what ``warning`` alone already expresses.
    """

    kind: Literal["sql"]
    query: str = Field(min_length=1)
    warning: float | None = None
    # Smart union: TOML ``true`` is a bool, ``1`` a threshold (lax bool would take 1 as true).
    critical: bool | float = True

    @property
    def is_critical(self) -> bool:
        return self.critical is not False

    @property
    def critical_threshold(self) -> float | None:
        return None if isinstance(self.critical, bool) else float(self.critical)

    def judge(self, value: float) -> CheckState:
        """Higher is worse, unless ``critical`` < ``warning``, in which case lower is worse."""
        critical = self.critical_threshold
        lower_is_worse = (
            critical is not None and self.warning is not None and critical < self.warning
        )
        sign = -1.0 if lower_is_worse else 1.0
        # Strictly beyond the level, as for every other threshold in opsctl.
        if critical is not None and sign * value > sign * critical:
            return "critical"
        if self.warning is not None and sign * value > sign * self.warning:
            return "warning"
        return "ok"


def _duration_or_schedule(text: str) -> str:
    # One type, not a union: a typo then reads "invalid duration", not two union branches.
    if text != "schedule":
        parse_duration(text)
    return text


class FreshnessCheck(_SeverityFlag):
    """``max_age`` is a DUR, or ``"schedule"``: failing exactly when the job is overdue by
    ``[schedule]`` (the dead man's switch), so one rule serves the probe and ``status``."""

    kind: Literal["freshness"]
    job: JobName
    max_age: Annotated[str, AfterValidator(_duration_or_schedule)]

    @property
    def by_schedule(self) -> bool:
        return self.max_age == "schedule"

    @property
    def max_age_td(self) -> timedelta:
        return parse_duration(self.max_age)


HealthCheck = Annotated[
    DatabaseCheck | HttpCheck | TcpCheck | S3Check | DiskCheck | SqlCheck | FreshnessCheck,
    Field(discriminator="kind"),
]
CHECK_MODELS: tuple[type[BaseModel], ...] = (
    DatabaseCheck,
    HttpCheck,
    TcpCheck,
    S3Check,
    DiskCheck,
    SqlCheck,
    FreshnessCheck,
)


class HealthSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=10, gt=0)
    # The role sql checks run as (PostgreSQL ``SET ROLE``, then the query): a
    # least-privileged role, so a copied or mistyped query cannot do what READ ONLY does
    # not stop (pg_terminate_backend, COPY TO a file or a program).
    sql_role: str | None = Field(default=None, min_length=1, max_length=63)
    # sql checks refuse to run when the login or the role is a superuser, unless this says
    # so: as a superuser, SET ROLE is no limit (a query can set the role back).
    allow_superuser: bool = False
    checks: list[HealthCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> HealthSettings:
        # `--check NAME`, events and run history all address a check by its name.
        seen: set[str] = set()
        for check in self.checks:
            if check.name in seen:
                raise InvalidKey("checks", f"duplicate check name {check.name!r}")
            seen.add(check.name)
        return self
