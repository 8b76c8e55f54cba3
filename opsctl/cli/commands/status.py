"""``opsctl status``: the on-call screen (a read-only report, not a job)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import nagios, pages, render
from opsctl.cli.nagios import ReportFormat
from opsctl.cli.session import Session, guarded
from opsctl.domain.nagios import Perf, above, status_line
from opsctl.domain.units import MISSING
from opsctl.events import Emitter, Redactor
from opsctl.jobs import status
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.jobs.schedule_show import ScheduleParams

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

app = typer.Typer(add_completion=False)


@app.command("status", epilog="Examples: opsctl status  |  opsctl --output json status  |  "
             "opsctl status --format nagios")
def status_command(
    ctx: typer.Context,
    format_: Annotated[ReportFormat, typer.Option("--format", help=nagios.FORMAT_HELP)
    ] = ReportFormat.events,
    html: pages.HtmlOption = None,
) -> None:
    """One screen for on-call: per job the last run and whether it is overdue, open
    alerts, the failure rate of the last hour and the cleanups waiting. Exit 0 ok,
    1 warning, 2 critical (an overdue job or an open alert), 3 database down.
    --html also writes it as a web page (e.g. every minute from cron into a web root)."""
    session = Session.of(ctx)
    nagios.use(session, format_, "STATUS", nagios_line)
    guarded(session, lambda: report_with_page(session, html))


def report_with_page(session: Session, html: Path | None) -> JobResult:
    """The report, and its page when asked for; the page path is checked first."""
    page = pages.checked(html)
    result = report(session)
    if page is None:
        return result
    return session.write_files(result, [page], lambda: pages.write_status_page(
        page, result, session.runtime, Redactor(session.secrets()).text))


def params(session: Session) -> status.StatusParams:
    settings = session.settings
    rate = settings.failure_rate
    return status.StatusParams(
        schedule=ScheduleParams(settings.schedule.jobs(), settings.schedule.grace_td),
        threshold=rate.threshold, warning=rate.warning, min_samples=rate.min_samples,
        retention_days=settings.logs.retention_days,
    )


def report(session: Session) -> JobResult:
    """Run the status report on one read-only connection; the result, for any view."""
    from opsctl.adapters.db.job_status import DbJobStatus

    wanted = params(session)
    context = JobContext(status.JOB, session.runtime, Emitter(session.runtime, None,
                                                              session.secrets()))
    source = DbJobStatus(session.database(read_only=True), session.settings.source)
    try:
        return status.run(context, source, wanted)
    finally:
        source.close()
        source.db.dispose()


# --- text view ----------------------------------------------------------------------------


def age(now: datetime, moment: datetime | None) -> str:
    """How long ago, in the one or two units a person reads at a glance (``42s``, ``3h05m``)."""
    if moment is None:
        return MISSING
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes}m"
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m" if hours < 10 else f"{hours}h"
    return f"{days}d"


@render.register(status.SUMMARY_TYPE)
def _render(out: Console, result: JobResult) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    fields, now = result.fields, result.extra["now"]
    out.print(Text.assemble((result.state.upper(), render.STATE_STYLES.get(result.state, "")),
                            " ", result.message.removeprefix(f"{result.state}: ")))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, caption="ages: time since the run "
                  "started", caption_justify="left")
    table.add_column("job", no_wrap=True, min_width=18)
    table.add_column("last\nrun", justify="right", no_wrap=True)
    # The state gives way first: job names and verdicts must stay whole.
    table.add_column("state", no_wrap=True, overflow="ellipsis",
                     max_width=max(6, out.width - 56))
    table.add_column("exit", justify="right", no_wrap=True, min_width=4)
    table.add_column("last\nok", justify="right", no_wrap=True)
    table.add_column("overdue", no_wrap=True, min_width=7)
    for row in fields["jobs"]:
        table.add_row(*_job_cells(row, now))
    out.print(table)
    for alert in fields["open_alerts"]:
        out.print(Text.assemble(("alert ", "bold red"), alert["name"],
                                f" open for {age(now, alert['opened_at'])}"))
    rate = fields["failure_rate"]
    finished = fields["completed"] + fields["failed"]
    shown = "no finished exports" if rate is None else (
        f"{finished:,} finished, {fields['failed']:,} failed ({rate:.1%})")
    out.print(f"last {fields['failure_window']}: {shown}")
    out.print(f"waiting for cleanup: {fields['pending_log_rows']:,} log rows, "
              f"{fields['pending_files']:,} files")


def _job_cells(row: dict[str, Any], now: datetime) -> list[str | Text]:
    from rich.text import Text

    state = row["last_state"]
    overdue = (Text("OVERDUE", "bold red") if row["overdue"]
               else Text("running", "cyan") if row["running"]
               else Text("no" if row["cron"] else "not scheduled", "dim"))
    return [
        Text(row["job"]),
        age(now, row["last_run_at"]),
        Text(state, render.STATE_STYLES.get(state, "")) if state else MISSING,
        MISSING if row["last_exit_code"] is None else str(row["last_exit_code"]),
        age(now, row["last_success_at"]),
        overdue,
    ]


def success_ages(result: JobResult, now: datetime) -> list[Perf]:
    """Per scheduled job, seconds since its last successful run started: the graph that
    shows a job that stopped running."""
    return [Perf(f"{row['job']}_last_success_age",
                 None if row["last_success_at"] is None
                 else round((now - row["last_success_at"]).total_seconds()), "s", min=0)
            for row in result.fields["jobs"] if row["cron"]]


def nagios_line(result: JobResult) -> str:
    fields = result.fields
    params: status.StatusParams = result.extra["params"]
    overdue = sum(1 for row in fields["jobs"] if row["overdue"])
    perfdata = [
        Perf("overdue_jobs", overdue, crit=above(0), min=0, max=len(fields["jobs"])),
        Perf("open_alerts", len(fields["open_alerts"]), crit=above(0), min=0),
        Perf("failure_ratio", fields["failure_rate"], warn=above(params.warning),
             crit=above(params.threshold), min=0, max=1),
        Perf("pending_log_rows", fields["pending_log_rows"], min=0),
        Perf("pending_files", fields["pending_files"], min=0),
        *success_ages(result, result.extra["now"]),
    ]
    return status_line("STATUS", result.exit_code, result.message, perfdata)
