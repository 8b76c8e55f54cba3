"""Publishing a job's alerts to the alert manager: never in a dry run, never fatal.

Each job decides what fires (the export failure rate, a failing job, an unhealthy check);
this module sends it and reports how that went as one ``alertmanager_sent`` event, so a
manager that is down is a warning in the log, never a different exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsctl.jobs.context import JobContext
from opsctl.ports import Alert, AlertPublisher, Resolvable


def publish(ctx: JobContext, publisher: AlertPublisher | None, name: str,
            firing: Sequence[Alert], resolvable: Resolvable) -> None:
    if publisher is None or ctx.dry_run:
        return
    outcome = publisher.sync(name, firing, resolvable)
    fields: dict[str, Any] = {"alertname": name, "ok": outcome.ok, "firing": outcome.firing,
              "resolved": outcome.resolved}
    if outcome.ok:
        ctx.emitter.emit("alertmanager_sent",
                         f"alertmanager: {name}: {outcome.firing} firing, "
                         f"{outcome.resolved} resolved", **fields)
    else:
        message = outcome.error or "failed"
        ctx.emitter.emit("alertmanager_sent", f"alertmanager: {name} not sent: {message}",
                         level="warning", error={"kind": outcome.details.get("kind", "failed"),
                                                 "message": message}, **fields)
