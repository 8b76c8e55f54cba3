"""Alerts for an alert manager (Prometheus Alertmanager): what fires and what resolves.

Alertmanager keeps its own state: it deduplicates an alert re-sent by every run and lets it
expire when the runs stop re-sending it. So the jobs keep none: each run sends what fires
now and resolves what the manager still holds as firing but this run found fine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

SERVICE = "opsctl"


@dataclass(frozen=True)
class Alert:
    """One firing alert. ``labels`` identify it (beyond ``alertname`` and ``service``)."""

    name: str
    severity: str
    labels: Mapping[str, str]
    summary: str
    description: str


@dataclass(frozen=True)
class AlertSync:
    firing: int = 0
    resolved: int = 0
    error: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


Resolvable = Callable[[Mapping[str, str]], bool]
"""Given the labels of an alert the manager holds as firing, whether this run found it fine
(so it is resolved). Alerts this run did not judge (another check) are left alone."""


class AlertPublisher(Protocol):
    def sync(self, name: str, firing: Sequence[Alert], resolvable: Resolvable) -> AlertSync:
        """Send ``firing`` (alert ``name``), resolve what ``resolvable`` accepts; never raise."""
