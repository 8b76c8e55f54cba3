"""Health probe: one configured check and what it found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

CheckState = Literal["ok", "warning", "critical"]


@dataclass(frozen=True)
class CheckFinding:
    """What one health check saw, before the probe applies the check's ``critical`` flag.

    A failure is ``critical`` here; the probe turns it into ``warning`` for a check
    configured ``critical = false``. ``error_kind`` is one short word a log pipeline can
    facet on (refused, timeout, status, tls, slow, threshold, stale, never_run, ...);
    ``error_message`` is safe to show (never a URL or a password).
    """

    state: CheckState = "ok"
    error_kind: str | None = None
    error_message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Probe(Protocol):
    def check(self, timeout_s: float) -> CheckFinding:
        """Look once, giving up after ``timeout_s``; raise an ``OpsctlError`` (for example
        ``DatabaseUnavailable``) when the dependency cannot be reached at all."""


@dataclass(frozen=True)
class ConfiguredCheck:
    """A ``[[health.checks]]`` entry bound to the probe that carries it out."""

    name: str
    kind: str
    critical: bool
    timeout_s: float | None
    probe: Probe
