"""``opsctl failure-rate check``."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import nagios, render
from opsctl.cli.nagios import ReportFormat
from opsctl.cli.session import Session, report_error
from opsctl.domain.durations import parse_duration
from opsctl.domain.nagios import Perf, number, status_line
from opsctl.domain.units import human_count, human_percent
from opsctl.errors import OpsctlError, UsageError
from opsctl.jobs import failure_rate_check
from opsctl.jobs.context import JobContext
from opsctl.jobs.failure_rate_check import (
    JOB,
    SUMMARY_TYPE,
    FailureRateParams,
    FailureRatePorts,
)
from opsctl.jobs.result import JobResult
from opsctl.ports import Notifier

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.settings import Settings

app = typer.Typer(help="Alert on the export failure rate.", no_args_is_help=True)


@app.command("check", epilog="\b\nExamples:\n  opsctl failure-rate check\n  opsctl failure-rate check --window 15m --threshold 0.2\n  opsctl failure-rate check --dry-run -o text")
def check(
    ctx: typer.Context,
    window: Annotated[str | None, typer.Option(
        "--window", metavar="DUR",
        help="Window ending now, e.g. 15m, 1h. [default: failure_rate.window, 60m]")] = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", metavar="F",
        help="Alert (exit 2, webhook) above this failed/(completed+failed) ratio, 0 to 1. "
        "[default: failure_rate.threshold, 0.10]")] = None,
    warning: Annotated[float | None, typer.Option(
        "--warning", metavar="F",
        help="Warn (exit 1) above this ratio. [default: failure_rate.warning, 0.05]")] = None,
    min_samples: Annotated[int | None, typer.Option(
        "--min-samples", metavar="N", min=0,
        help="Fewer finished exports than this: insufficient_samples, exit 0. "
        "[default: failure_rate.min_samples, 5]")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run",
        help="Compute and report only: no notification, no alert state, no run record.")
    ] = False,
    format_: Annotated[ReportFormat, typer.Option("--format", help=nagios.FORMAT_HELP)
    ] = ReportFormat.events,
) -> None:
    """Check failed / (completed + failed) over the window ending now; exit 0 ok, 1 warning,
    2 alert. Notifies alerts.webhook_url with a cooldown, and once when the alert clears."""
    session = Session.of(ctx)
    nagios.use(session, format_, "FAILURE_RATE", nagios_line)
    try:
        params = _params(session, window, threshold, warning, min_samples)
    except OpsctlError as exc:
        report_error(session.env, exc, job=JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.alert_state import DbAlertStateStore
        from opsctl.adapters.db.failure_counts import DbFailureCounts

        settings = session.settings
        db = session.database(read_only=job_ctx.dry_run)
        ports = FailureRatePorts(
            counts=DbFailureCounts(db, settings.source.table,
                                   settings.source.columns.model_dump()),
            alerts=DbAlertStateStore(db),
            notifier=_notifier(settings),
            alertmanager=session.alertmanager(),
        )
        return failure_rate_check.run(job_ctx, ports, params)

    session.run_job(JOB, SUMMARY_TYPE, work, mutating=True, dry_run=dry_run)


def _params(
    session: Session, window: str | None, threshold: float | None, warning: float | None,
    min_samples: int | None,
) -> FailureRateParams:
    """Flags over config. Flags are checked first, so a bad flag is 64 even when the
    config is also broken."""
    length = None
    if window is not None:
        try:
            length = parse_duration(window)
        except ValueError as exc:
            raise UsageError(f"--window: {exc}") from None
    for flag, value in (("--threshold", threshold), ("--warning", warning)):
        if value is not None and not 0.0 <= value <= 1.0:  # also NaN
            raise UsageError(f"{flag} must be between 0 and 1, got {value}")
    settings = session.settings
    config = settings.failure_rate
    effective_threshold = config.threshold if threshold is None else threshold
    effective_warning = config.warning if warning is None else warning
    if effective_warning > effective_threshold:
        raise UsageError(
            f"--warning {effective_warning}{'' if warning is not None else ' (from config)'} "
            f"must not exceed --threshold {effective_threshold}"
            f"{'' if threshold is not None else ' (from config)'}"
        )
    try:
        return FailureRateParams(
            window=length or config.window_td,
            threshold=effective_threshold,
            warning=effective_warning,
            min_samples=config.min_samples if min_samples is None else min_samples,
            cooldown=timedelta(minutes=settings.alerts.cooldown_minutes),
            top_errors=settings.metrics.top_error_types,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _notifier(settings: Settings) -> Notifier | None:
    if settings.alerts.webhook_url is None:
        return None
    from opsctl.adapters.notify.webhook import WebhookNotifier

    return WebhookNotifier(settings.alerts.webhook_url.get_secret_value(),
                           timeout_s=settings.alerts.timeout_s)


@render.register(SUMMARY_TYPE)
def _render(out: Console, result: JobResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    f = result.fields
    style = render.STATE_STYLES.get(result.state, "bold")
    render.headline(out, result)
    start, end = _when(f["window_start"]), _when(f["window_end"])
    if start[:10] == end[:10]:
        end = end[11:]
    out.print(render.field_table([
        ("failure rate", f"[{style}]{human_percent(f['failure_rate'])}[/]"),
        ("failed / finished", f"{human_count(f['failed'])} / {human_count(f['total'])}"),
        ("completed", human_count(f["completed"])),
        ("alert above", human_percent(f["threshold"])),
        ("warn above", human_percent(f["warning"])),
        ("min samples", human_count(f["min_samples"])),
        ("window", f"last {f['window']}: {start} → {end} UTC"),
        ("alert", _alert_text(f)),
    ], align="left"))
    if f["top_error_types"]:
        errors = Table(title="top error types", title_justify="left")
        errors.add_column("error type")
        errors.add_column("failed", justify="right")
        for item in f["top_error_types"]:
            errors.add_row(escape(str(item["error_type"])), human_count(item["count"]))
        out.print(errors)


_NOTIFICATION_TEXT = {
    "sent": "webhook notified",
    "failed": "webhook notification failed (see stderr)",
    "suppressed_by_cooldown": "not notified again: inside the cooldown",
    "no_webhook": "no webhook configured",
    "dry_run": "dry run: nothing sent or saved",
}


def _alert_text(f: dict[str, Any]) -> str:
    if f["alert_transition"] == "resolved":
        status = "[green]resolved now[/]"
    elif f["alert_open"]:
        status = "[bold red]opened now[/]" if f["alert_transition"] == "opened" else "[red]open[/]"
    else:
        return "none"
    note = _NOTIFICATION_TEXT.get(f.get("notification") or "")
    return f"{status}; {note}" if note else status


def _when(stamp: str) -> str:
    """``2026-11-23T12:10:34.699Z`` as ``2026-11-23 12:10:34`` for people."""
    return stamp[:19].replace("T", " ")


def nagios_line(result: JobResult) -> str:
    """The failure ratio against its warning and alert levels, and the counts behind it."""
    f = result.fields
    return status_line("FAILURE_RATE", result.exit_code, result.message, [
        Perf("failure_ratio", f["failure_rate"], warn=number(f["warning"]),
             crit=number(f["threshold"]), min=0, max=1),
        Perf("exports_finished", f["total"], min=0),
        Perf("exports_failed", f["failed"], min=0),
    ])
