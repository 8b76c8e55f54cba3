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
                held, unread = self._active(client, name)
                for alert in held:
                    labels = alert.get("labels") or {}
                    if _key(labels) not in firing_keys and resolvable(labels):
                        body.append({"labels": labels,
                                     "annotations": alert.get("annotations") or {},
                                     "startsAt": alert.get("startsAt"), "endsAt": rfc3339(now)})
                if body:
                    response = client.post(self.url, json=body)
                    response.raise_for_status()
        except httpx.HTTPError as exc:
            return self._failed(exc)
        if unread is not None:
            # The firing alerts went out; only resolving had to be skipped.
            return AlertSync(firing=len(firing), error=f"{unread.error}; firing alerts sent, "
                             "none resolved", details=unread.details)
        return AlertSync(firing=len(firing), resolved=len(body) - len(firing))

    def _active(self, client: httpx.Client, name: str
                ) -> tuple[list[dict[str, Any]], AlertSync | None]:
        """The alerts held as firing, or none and why when the answer cannot be read (an
        error page, a login proxy's 200 "OK"): that must not stop the firing alerts from
        being sent. A manager that cannot be reached at all is left to the caller."""
        response = client.get(self.url, params=[
            ("active", "true"), ("silenced", "true"), ("inhibited", "true"),
            ("unprocessed", "true"),
            ("filter", f'alertname="{name}"'), ("filter", f'service="{SERVICE}"')])
        try:
            response.raise_for_status()
            found = response.json()
        except httpx.HTTPStatusError as exc:
            return [], self._failed(exc)
        except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
            return [], AlertSync(error="Alertmanager answered with something that is not "
                                 "JSON", details={"kind": "bad_response"})
        return ([a for a in found if isinstance(a, dict)] if isinstance(found, list) else [],
                None)

    def _failed(self, exc: httpx.HTTPError) -> AlertSync:
        if isinstance(exc, httpx.HTTPStatusError):
            return AlertSync(error=f"Alertmanager answered HTTP {exc.response.status_code}",
                             details={"kind": "status"})
        if isinstance(exc, httpx.TimeoutException):
            return AlertSync(error=f"no answer within {self.timeout_s:g}s",
                             details={"kind": "timeout"})
        kind = "refused" if isinstance(exc, httpx.ConnectError) else "unreachable"
        return AlertSync(error=f"Alertmanager unreachable: {type(exc).__name__}",
                         details={"kind": kind})


def _key(labels: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """An alert's identity: its labels, as Alertmanager fingerprints them."""
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))
