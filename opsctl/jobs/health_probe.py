"""``health.probe``: run every configured check at once and judge the system by the worst.

A load balancer or an on-call engineer asks "is it up?" and wants the answer in about the
time of the slowest check, not the sum of all of them; and a hung dependency must not hang
the probe. So each check runs in its own daemon thread and the probe waits for each one
only until that check's own timeout or the probe's deadline, whichever comes first. A
thread still stuck after that is abandoned (daemon threads never delay the exit) and the
check is reported as timed out.

For the probe a failing dependency is a finding, not an UNKNOWN: a database that is down
makes the ``database`` check critical and the probe ``unhealthy`` (exit 2), never exit 3.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from opsctl.errors import Interrupted, OpsctlError, UsageError
from opsctl.exit_codes import ExitCode
from opsctl.jobs.alerting import publish
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import Alert, AlertPublisher, CheckFinding, CheckState, ConfiguredCheck

log = logging.getLogger(__name__)

JOB = "health.probe"
SUMMARY = "health_probe"
CHECK_EVENT = "health_check"
MANAGER_ALERT = "OpsctlUnhealthy"

_VERDICTS: dict[CheckState, tuple[str, ExitCode]] = {
    "ok": ("healthy", ExitCode.OK),
    "warning": ("degraded", ExitCode.WARNING),
    "critical": ("unhealthy", ExitCode.CRITICAL),
}
_SEVERITY: dict[CheckState, int] = {"ok": 0, "warning": 1, "critical": 2}
_LEVELS: dict[CheckState, str] = {"ok": "info", "warning": "warning", "critical": "error"}


@dataclass(frozen=True)
class ProbeParams:
    timeout_s: float
    """The probe's deadline: no check is waited for longer than this."""
    monotonic: Callable[[], float] = field(default=time.monotonic)


@dataclass(frozen=True)
class CheckReport:
    """One check's line in the probe: the ``health_check`` event and the text view's row."""

    check: str
    kind: str
    state: CheckState
    critical: bool
    latency_ms: int
    error: dict[str, str] | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check, "kind": self.kind, "state": self.state,
            "critical": self.critical, "latency_ms": self.latency_ms,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.detail:
            out["detail"] = self.detail
        return out


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=_Named)


def select_checks(checks: Sequence[NamedT], wanted: Sequence[str]) -> list[NamedT]:
    """The checks named by ``--check`` (all of them when none is named), in config order.

    An unknown name is a usage error that lists the names that exist, so a typo in a
    load balancer's command line fails loudly instead of probing nothing.
    """
    if not wanted:
        return list(checks)
    known = [check.name for check in checks]
    unknown = [name for name in dict.fromkeys(wanted) if name not in known]
    if unknown:
        raise UsageError(
            f"unknown check {', '.join(repr(n) for n in unknown)}; "
            f"configured checks: {', '.join(known) if known else '(none)'}"
        )
    chosen = set(wanted)
    return [check for check in checks if check.name in chosen]


def run(ctx: JobContext, checks: Sequence[ConfiguredCheck], params: ProbeParams,
        alertmanager: AlertPublisher | None = None) -> JobResult:
    clock = params.monotonic
    started = clock()
    budgets = [_budget(check, params.timeout_s) for check in checks]
    futures = [_start(check, budget) for check, budget in zip(checks, budgets, strict=True)]
    reports = []
    for check, budget, future in zip(checks, budgets, futures, strict=True):
        remaining = max(0.0, started + budget - clock())
        try:
            finding, elapsed = future.result(timeout=remaining)
        except FutureTimeout:
            finding = CheckFinding("critical", "timeout", f"no answer within {budget:g}s")
            elapsed = clock() - started
        except Interrupted:
            raise  # SIGTERM/SIGINT while waiting: the runner writes the summary (143/130)
        except OpsctlError as exc:
            finding = CheckFinding("critical", exc.kind, exc.message)
            elapsed = clock() - started
        except Exception as exc:  # a bug in a check must not hide the other checks
            log.debug("check %s failed unexpectedly", check.name, exc_info=exc)
            finding = CheckFinding("critical", "internal", f"{type(exc).__name__}: {exc}")
            elapsed = clock() - started
        reports.append(_report(check, finding, elapsed))
    for report in reports:
        ctx.emitter.emit(CHECK_EVENT, _check_message(report), level=_LEVELS[report.state],
                         **report.fields())
    # One alert per failing critical check; checks this probe ran and found fine resolve.
    firing = [_manager_alert(r) for r in reports if r.state == "critical"]
    probed = {r.check for r in reports} - {r.check for r in reports if r.state == "critical"}
    publish(ctx, alertmanager, MANAGER_ALERT, firing,
            lambda labels: labels.get("check") in probed)
    return _summary(reports, params.timeout_s, clock() - started)


def _manager_alert(report: CheckReport) -> Alert:
    message = report.error["message"] if report.error else "failed"
    return Alert(MANAGER_ALERT, "critical", {"opsctl_job": JOB, "check": report.check},
                 f"health check {report.check} ({report.kind}) is failing",
                 f"{report.check}: {message}")


def _budget(check: ConfiguredCheck, deadline_s: float) -> float:
    return min(check.timeout_s or deadline_s, deadline_s)


def _start(check: ConfiguredCheck, timeout_s: float) -> Future[tuple[CheckFinding, float]]:
    """Run one check in a daemon thread; the future carries its finding and its latency."""
    future: Future[tuple[CheckFinding, float]] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        began = time.monotonic()
        try:
            finding = check.probe.check(timeout_s)
        except BaseException as exc:  # handed over to the waiting thread
            future.set_exception(exc)
        else:
            future.set_result((finding, time.monotonic() - began))

    threading.Thread(target=target, name=f"health-check-{check.name}", daemon=True).start()
    return future


def _report(check: ConfiguredCheck, finding: CheckFinding, elapsed_s: float) -> CheckReport:
    state: CheckState = finding.state
    if state == "critical" and not check.critical:
        state = "warning"  # critical = false: failing only degrades the probe
    error = None
    if state != "ok":
        error = {"kind": finding.error_kind or "failed",
                 "message": finding.error_message or f"{check.kind} check failed"}
    return CheckReport(check.name, check.kind, state, check.critical,
                       round(elapsed_s * 1000), error, dict(finding.detail))


def _check_message(report: CheckReport) -> str:
    if report.error is None:
        return f"{report.check}: ok in {report.latency_ms} ms"
    return f"{report.check}: {report.state}: {report.error['message']}"


def _summary(reports: list[CheckReport], timeout_s: float, elapsed_s: float) -> JobResult:
    worst: CheckState = max((r.state for r in reports), key=_SEVERITY.__getitem__, default="ok")
    state, code = _VERDICTS[worst]
    failed = [r for r in reports if r.state != "ok"]
    if failed:
        message = (f"{state}: {len(failed)} of {len(reports)} checks failed "
                   f"({', '.join(r.check for r in failed)})")
    else:
        message = f"{state}: {len(reports)} checks ok"
    fields = {
        "checks_total": len(reports),
        "checks_failed": len(failed),
        "checks_warning": sum(r.state == "warning" for r in reports),
        "checks_critical": sum(r.state == "critical" for r in reports),
        "failed_checks": [r.check for r in failed],
        "timeout_s": timeout_s,
        "duration_ms": round(elapsed_s * 1000),
    }
    database_down = any(r.kind == "database" and r.state != "ok" for r in reports)
    return JobResult(SUMMARY, message, state, code, fields,
                     extra={"checks": [r.fields() for r in reports]},
                     database_down=database_down)
