"""The failure-rate check: outcome counts, the stored alert state and the notifier."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class ErrorTypeCount:
    error_type: str
    count: int


@dataclass(frozen=True)
class OutcomeCounts:
    """Finished exports in a window: the two numbers a failure rate is made of."""

    completed: int
    failed: int
    top_error_types: tuple[ErrorTypeCount, ...] = ()


class FailureCounts(Protocol):
    def counts(self, start: datetime, end: datetime, top: int) -> OutcomeCounts:
        """Completed and failed exports created in ``[start, end)``, and the ``top`` most
        frequent error types among the failed ones."""


@dataclass(frozen=True)
class AlertState:
    """One alert's memory between stateless cron runs (a row of ``opsctl_alert_state``)."""

    name: str
    state: str  # "open" | "resolved"
    updated_at: datetime
    opened_at: datetime | None = None
    last_notified_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AlertStateStore(Protocol):
    def load(self, name: str) -> AlertState | None:
        """The alert's last saved state; None when it never fired (or no table yet)."""

    def save(self, state: AlertState) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """How a notification went; ``error`` is safe to show (it never holds the URL)."""

    delivered: bool
    attempts: int
    error: str | None = None


class Notifier(Protocol):
    def send(self, payload: dict[str, Any]) -> Delivery:
        """Deliver ``payload``; never raises for an unreachable receiver."""
