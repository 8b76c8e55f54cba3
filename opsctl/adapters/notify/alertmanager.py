"""Prometheus Alertmanager, API v2: ``POST /api/v2/alerts`` and ``GET /api/v2/alerts``.

A firing alert is sent with ``endsAt = now + ttl`` on every run while it fires, so it
stays firing exactly as long as runs keep confirming it, and expires on its own if they
stop. Before sending, the alerts Alertmanager holds as firing for this alert name are read
back; those this run found fine are resolved: the same labels, ``endsAt = now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from opsctl.events import rfc3339
from opsctl.ports import Alert, AlertSync, Resolvable
from opsctl.ports.alerting import SERVICE


def labels_of(alert: Alert) -> dict[str, str]:
    return {"alertname": alert.name, "severity": alert.severity, "service": SERVICE,
            **alert.labels}


def firing_body(alert: Alert, now: datetime, ttl: timedelta) -> dict[str, Any]:
    # startsAt is needed: given only endsAt, Alertmanager starts the alert at endsAt. On a
    # re-send it keeps the earlier start, so the alert's age survives every run.
    return {"labels": labels_of(alert),
            "annotations": {"summary": alert.summary, "description": alert.description},
            "startsAt": rfc3339(now), "endsAt": rfc3339(now + ttl)}


class AlertmanagerPublisher:
    """``AlertPublisher`` on one Alertmanager (or a load balancer in front of a cluster)."""

    def __init__(self, url: str, ttl: timedelta, timeout_s: float,
                 clock: Callable[[], datetime]) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.ttl, self.timeout_s, self.clock = ttl, timeout_s, clock

    def sync(self, name: str, firing: Sequence[Alert], resolvable: Resolvable) -> AlertSync:
        now = self.clock()
        body = [firing_body(alert, now, self.ttl) for alert in firing]
        firing_keys = {_key(labels_of(alert)) for alert in firing}
        try:
            with httpx.Client(timeout=self.timeout_s) as client:
                for held in self._active(client, name):
                    labels = held.get("labels") or {}
                    if _key(labels) not in firing_keys and resolvable(labels):
                        body.append({"labels": labels,
                                     "annotations": held.get("annotations") or {},
                                     "startsAt": held.get("startsAt"), "endsAt": rfc3339(now)})
                if body:
                    response = client.post(self.url, json=body)
                    response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            return AlertSync(error=f"Alertmanager answered HTTP {exc.response.status_code}",
                             details={"kind": "status"})
        except httpx.TimeoutException:
            return AlertSync(error=f"no answer within {self.timeout_s:g}s",
                             details={"kind": "timeout"})
        except httpx.HTTPError as exc:
            kind = "refused" if isinstance(exc, httpx.ConnectError) else "unreachable"
            return AlertSync(error=f"Alertmanager unreachable: {type(exc).__name__}",
                             details={"kind": kind})
        return AlertSync(firing=len(firing), resolved=len(body) - len(firing))

    def _active(self, client: httpx.Client, name: str) -> list[dict[str, Any]]:
        response = client.get(self.url, params=[
            ("active", "true"), ("silenced", "true"), ("inhibited", "true"),
            ("unprocessed", "true"),
            ("filter", f'alertname="{name}"'), ("filter", f'service="{SERVICE}"')])
        response.raise_for_status()
        found = response.json()
        return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def _key(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """An alert's identity: its labels, as Alertmanager fingerprints them."""
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))
