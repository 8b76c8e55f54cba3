"""``failure-rate.check``: judge the export failure rate over a trailing window, and tell
the on-call about an alert as often as they asked to be told, and once when it clears.

Cron runs are separate processes, so the only memory between them is one row of alert
state: whether an alert is open, since when, and when it was last notified. That row makes
the cooldown and the single resolution notice work; the runner holds the job lock (the job
is registered as mutating) so two overlapping runs cannot both see "not notified yet".

Decisions worth knowing:

- ``insufficient_samples`` leaves an open alert open and writes nothing: a quiet hour says
  nothing about whether the failures stopped, and resolving on it would page "resolved"
  and then "alert" again as soon as traffic came back.
- ``warning`` resolves an open alert: the rate is no longer above the alert threshold.
- A notification that was not delivered does not start the cooldown, so the next run tries
  again. A resolution that was not delivered still closes the alert: one resolved event
  per alert, never one on every later run.
- No finished export at all is ``insufficient_samples`` even with ``min_samples = 0``: a
  rate over nothing is undefined, and "ok" would hide a service that stopped exporting.
- A dry run goes through the same path, emits the same events (``dry_run: true``,
  ``notified: false``) and neither notifies nor saves alert state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from opsctl.domain.durations import format_duration
from opsctl.domain.stats import safe_ratio
from opsctl.domain.units import human_percent
from opsctl.domain.windows import Window, trailing
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.alerting import publish
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import (
    Alert,
    AlertPublisher,
    AlertState,
    AlertStateStore,
    Delivery,
    FailureCounts,
    Notifier,
    OutcomeCounts,
)

JOB = "failure-rate.check"
SUMMARY_TYPE = "failure_rate_check"
ALERT_NAME = "export_failure_rate"
ALERT_EVENT = "export_failure_alert"
RESOLVED_EVENT = "export_failure_resolved"
MANAGER_ALERT = "OpsctlExportFailureRate"

OK, WARNING, ALERT, INSUFFICIENT = "ok", "warning", "alert", "insufficient_samples"
EXIT_CODES = {
    OK: ExitCode.OK,
    WARNING: ExitCode.WARNING,
    ALERT: ExitCode.CRITICAL,
    INSUFFICIENT: ExitCode.OK,
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureRateParams:
    """The effective settings of one check (config overridden by flags), already checked."""

    window: timedelta
    threshold: float
    warning: float
    min_samples: int
    cooldown: timedelta
    top_errors: int = 5

    def __post_init__(self) -> None:
        # ``not 0 <= x <= 1`` also rejects NaN, which every comparison would let through.
        for name, value in (("threshold", self.threshold), ("warning", self.warning)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.warning > self.threshold:
            raise ValueError(
                f"warning ({self.warning}) must not exceed threshold ({self.threshold})"
            )
        if self.min_samples < 0:
            raise ValueError(f"min_samples must be >= 0, got {self.min_samples}")
        if self.window <= timedelta(0):
            raise ValueError("window must be greater than zero")
        if self.cooldown < timedelta(0) or self.top_errors < 1:
            raise ValueError("cooldown must be >= 0 and top_errors >= 1")


@dataclass(frozen=True)
class FailureRatePorts:
    counts: FailureCounts
    alerts: AlertStateStore
    notifier: Notifier | None = None  # None: no webhook configured
    alertmanager: AlertPublisher | None = None


def classify(counts: OutcomeCounts, params: FailureRateParams) -> tuple[str, float | None]:
    """The check's state and the failure rate it is based on (None over no exports)."""
    total = counts.completed + counts.failed
    rate = safe_ratio(counts.failed, total)
    if rate is None or total < params.min_samples:
        return INSUFFICIENT, rate
    if rate > params.threshold:
        return ALERT, rate
    if rate > params.warning:
        return WARNING, rate
    return OK, rate


@dataclass(frozen=True)
class _Check:
    """What this run measured, in the shapes events, payloads and alert state share."""

    window: Window
    counts: OutcomeCounts
    state: str
    rate: float | None
    params: FailureRateParams

    @property
    def total(self) -> int:
        return self.counts.completed + self.counts.failed

    @property
    def window_text(self) -> str:
        return format_duration(self.params.window)

    @property
    def tally(self) -> str:
        return (f"{self.counts.failed} of {self.total} exports failed in the last "
                f"{self.window_text}")

    def top_error_types(self) -> list[dict[str, Any]]:
        return [{"error_type": e.error_type, "count": e.count}
                for e in self.counts.top_error_types]

    def numbers(self) -> dict[str, Any]:
        return {
            "window_start": rfc3339(self.window.start),
            "window_end": rfc3339(self.window.end),
            "total": self.total,
            "completed": self.counts.completed,
            "failed": self.counts.failed,
            "failure_rate": self.rate,
            "threshold": self.params.threshold,
        }


@dataclass(frozen=True)
class _Outcome:
    alert_open: bool
    transition: str | None = None  # "opened" | "resolved"
    # sent | failed | suppressed_by_cooldown | no_webhook | dry_run; None: nothing to say
    notification: str | None = None

    @property
    def notified(self) -> bool:
        return self.notification == "sent"


def run(ctx: JobContext, ports: FailureRatePorts, params: FailureRateParams) -> JobResult:
    now = ctx.now()
    window = trailing(now, params.window)
    counts = ports.counts.counts(window.start, window.end, params.top_errors)
    state, rate = classify(counts, params)
    check = _Check(window, counts, state, rate, params)
    previous = ports.alerts.load(ALERT_NAME)
    open_alert = previous if previous is not None and previous.state == "open" else None
    if state == ALERT:
        outcome = _alert(ctx, ports, check, open_alert, now)
    elif state in (OK, WARNING) and open_alert is not None:
        outcome = _resolve(ctx, ports, check, open_alert, now)
    else:
        outcome = _Outcome(alert_open=open_alert is not None)
    # Alertmanager keeps its own state: re-sent on every run while the rate is above the
    # threshold, resolved by any run that judged it back below (not by too few samples).
    firing = [_manager_alert(ctx, check)] if state == ALERT else []
    publish(ctx, ports.alertmanager, MANAGER_ALERT, firing,
            lambda labels: state in (OK, WARNING))
    return _result(ctx, check, outcome)


def _manager_alert(ctx: JobContext, check: _Check) -> Alert:
    listed = ", ".join(f"{e.error_type} ({e.count})" for e in check.counts.top_error_types)
    return Alert(
        MANAGER_ALERT, "critical", {"opsctl_job": JOB},
        f"export failure rate {human_percent(check.rate)} is above "
        f"{human_percent(check.params.threshold)}",
        f"{check.tally} (checked on {ctx.runtime.host})"
        + (f"; top errors: {listed}" if listed else ""),
    )


def _alert(
    ctx: JobContext, ports: FailureRatePorts, check: _Check, open_alert: AlertState | None,
    now: datetime,
) -> _Outcome:
    last_notified = open_alert.last_notified_at if open_alert else None
    suppressed = last_notified is not None and now - last_notified < check.params.cooldown
    opened_at = (open_alert.opened_at if open_alert else None) or now
    listed = ", ".join(f"{e.error_type} ({e.count})" for e in check.counts.top_error_types)
    top = f"; top errors: {listed}" if listed else ""
    payload = _payload(
        ctx, check, ALERT_EVENT,
        f"[opsctl] ALERT on {ctx.runtime.host}: export failure rate "
        f"{human_percent(check.rate)} is above {human_percent(check.params.threshold)} "
        f"({check.tally}){top}",
        severity="high", warning=check.params.warning,
        top_error_types=check.top_error_types(), opened_at=rfc3339(opened_at),
    )
    notification, delivery = (("suppressed_by_cooldown", None) if suppressed
                              else _notify(ctx, ports.notifier, payload))
    notified = notification == "sent"
    ctx.emitter.emit(
        ALERT_EVENT,
        f"export failure rate {human_percent(check.rate)} is above the alert threshold "
        f"{human_percent(check.params.threshold)}",
        level="error", severity="high", failure_rate=check.rate,
        threshold=check.params.threshold, total=check.total, failed=check.counts.failed,
        top_error_types=check.top_error_types(), notified=notified,
        suppressed_by_cooldown=suppressed, opened_at=rfc3339(opened_at), dry_run=ctx.dry_run,
        **_delivery_error(delivery),
    )
    if not ctx.dry_run:
        ports.alerts.save(AlertState(
            name=ALERT_NAME, state="open", updated_at=now, opened_at=opened_at,
            last_notified_at=now if notified else last_notified, details=_details(ctx, check),
        ))
    return _Outcome(alert_open=True, transition=None if open_alert else "opened",
                    notification=notification)


def _resolve(
    ctx: JobContext, ports: FailureRatePorts, check: _Check, open_alert: AlertState,
    now: datetime,
) -> _Outcome:
    opened_at = rfc3339(open_alert.opened_at) if open_alert.opened_at else None
    payload = _payload(
        ctx, check, RESOLVED_EVENT,
        f"[opsctl] RESOLVED on {ctx.runtime.host}: export failure rate back to "
        f"{human_percent(check.rate)} (threshold {human_percent(check.params.threshold)}, "
        f"{check.tally})",
        opened_at=opened_at, resolved_at=rfc3339(now),
    )
    notification, delivery = _notify(ctx, ports.notifier, payload)
    notified = notification == "sent"
    ctx.emitter.emit(
        RESOLVED_EVENT,
        f"export failure rate back to {human_percent(check.rate)}, at or below the alert "
        f"threshold {human_percent(check.params.threshold)}: alert resolved",
        failure_rate=check.rate, notified=notified, threshold=check.params.threshold,
        total=check.total, failed=check.counts.failed, opened_at=opened_at,
        dry_run=ctx.dry_run, **_delivery_error(delivery),
    )
    if not ctx.dry_run:
        ports.alerts.save(replace(
            open_alert, state="resolved", updated_at=now, details=_details(ctx, check),
            last_notified_at=now if notified else open_alert.last_notified_at,
        ))
    return _Outcome(alert_open=False, transition="resolved", notification=notification)


def _notify(
    ctx: JobContext, notifier: Notifier | None, payload: dict[str, Any]
) -> tuple[str, Delivery | None]:
    if ctx.dry_run:
        return "dry_run", None
    if notifier is None:
        return "no_webhook", None
    delivery = notifier.send(payload)
    if delivery.delivered:
        return "sent", delivery
    # Never fatal: the exit code must report the failure rate, not the webhook.
    log.warning("webhook notification (%s) failed after %d attempt(s): %s",
                payload["type"], delivery.attempts, delivery.error)
    return "failed", delivery


def _delivery_error(delivery: Delivery | None) -> dict[str, str]:
    if delivery is None or delivery.delivered:
        return {}
    return {"notify_error": delivery.error or "not delivered"}


def _details(ctx: JobContext, check: _Check) -> dict[str, Any]:
    return {**check.numbers(), "run_id": ctx.runtime.run_id, "host": ctx.runtime.host}


def _payload(
    ctx: JobContext, check: _Check, type_: str, text: str, **extra: Any
) -> dict[str, Any]:
    """What the webhook receives; ``text`` makes it readable in Slack-style receivers."""
    return {"type": type_, "text": text, **check.numbers(), **extra,
            "host": ctx.runtime.host, "job": JOB, "run_id": ctx.runtime.run_id}


def _message(check: _Check) -> str:
    params = check.params
    if check.state == INSUFFICIENT:
        return (f"only {check.total} finished exports in the last {check.window_text} "
                f"(min_samples {params.min_samples}): not enough to judge")
    rate = human_percent(check.rate)
    if check.state == ALERT:
        return (f"failure rate {rate} above the alert threshold "
                f"{human_percent(params.threshold)} ({check.tally})")
    if check.state == WARNING:
        return (f"failure rate {rate} above the warning threshold "
                f"{human_percent(params.warning)} ({check.tally})")
    return f"failure rate {rate} ({check.tally})"


def _result(ctx: JobContext, check: _Check, outcome: _Outcome) -> JobResult:
    params = check.params
    return JobResult(SUMMARY_TYPE, _message(check), check.state, EXIT_CODES[check.state], {
        **check.numbers(),
        "warning": params.warning,
        "min_samples": params.min_samples,
        "window": check.window_text,
        "top_error_types": check.top_error_types(),
        "alert_open": outcome.alert_open,
        "alert_transition": outcome.transition,
        "notified": outcome.notified,
        "suppressed_by_cooldown": outcome.notification == "suppressed_by_cooldown",
        "notification": outcome.notification,
        "dry_run": ctx.dry_run,
    })
