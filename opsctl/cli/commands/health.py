"""``opsctl health probe``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import nagios, render
from opsctl.cli.nagios import ReportFormat
from opsctl.cli.session import Session, report_error
from opsctl.domain.nagios import Perf, above, below, status_line
from opsctl.domain.units import human_ms
from opsctl.errors import OpsctlError
from opsctl.jobs import health_probe
from opsctl.jobs.context import JobContext
from opsctl.jobs.health_probe import CHECK_EVENT, JOB, SUMMARY, ProbeParams, select_checks
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.settings.health import HealthCheck

app = typer.Typer(help="Probe the health of the export system.", no_args_is_help=True)


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter("must be greater than 0")
    return value


@app.command("probe")
def probe(
    ctx: typer.Context,
    check: Annotated[list[str] | None, typer.Option(
        "--check", metavar="NAME",
        help="Run only this check (repeatable). [default: every configured check]")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", metavar="S", callback=_positive,
        help="Deadline of the whole probe in seconds; a check still running then is "
        "reported as timed out. [default: health.timeout_s, 10]")] = None,
    format_: Annotated[ReportFormat, typer.Option("--format", help=nagios.FORMAT_HELP)
    ] = ReportFormat.events,
) -> None:
    """Run the [[health.checks]] in parallel; exit 0 healthy, 1 degraded, 2 unhealthy.

    With no checks configured: the database, and the export storage when there is one.
    """
    session = Session.of(ctx)
    nagios.use(session, format_, "HEALTH", nagios_line)
    try:
        checks, deadline = _plan(session, check or [], timeout)
    except OpsctlError as exc:
        report_error(session.env, exc, job=JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.checks import catalog

        configured = catalog.build(checks, session.settings, session.runtime.env,
                                   session.runtime.clock, dry_run=job_ctx.dry_run)
        return health_probe.run(job_ctx, configured, ProbeParams(timeout_s=deadline),
                                session.alertmanager())

    session.run_job(JOB, SUMMARY, work, bookkeeping_optional=True)


def _plan(
    session: Session, wanted: list[str], timeout: float | None
) -> tuple[list[HealthCheck], float]:
    from opsctl.adapters.checks.catalog import effective_checks

    settings = session.settings
    checks = select_checks(effective_checks(settings, session.runtime.env), wanted)
    return checks, timeout if timeout is not None else settings.health.timeout_s


@render.register(SUMMARY, absorbs=(CHECK_EVENT,))
def _render_probe(out: Console, result: JobResult) -> None:
    from rich.table import Table
    from rich.text import Text

    rows: list[dict[str, Any]] | None = result.extra.get("checks")
    if rows is None:  # interrupted before any check reported
        render.key_values(out, result)
        return
    table = Table(title_justify="left")
    for column in ("check", "kind", "state"):
        table.add_column(column)
    table.add_column("latency", justify="right")
    table.add_column("reason", overflow="fold")
    for row in rows:
        error = row.get("error")
        reason = error["message"] if error else ""
        table.add_row(Text(row["check"], style="bold"), row["kind"],
                      render.styled_state(row["state"]), human_ms(row["latency_ms"]),
                      Text(reason))
    out.print(table)
    f = result.fields
    failed = f"{f['checks_failed']} of {f['checks_total']} failed" if f["checks_failed"] else (
        f"all {f['checks_total']} ok")
    out.print(f"{render.styled_state(result.state)}: {failed} "
              f"in {human_ms(f['duration_ms'])}")


def nagios_line(result: JobResult) -> str:
    """``OPSCTL HEALTH OK - 2 checks | 'db_latency'=3ms;;;0 'disk_free'=41.2%;15:;10:;0;100``.

    Each check gives its latency and, where its kind measures something, that value with
    the check's own levels: what a graph should show is the disk filling up, the queue
    growing or the job's last success ageing, not only how fast the answer came.
    """
    rows: list[dict[str, Any]] = result.extra.get("checks") or []
    failed = [row for row in rows if row["state"] != "ok"]
    if not rows:
        text = result.message
    elif failed:
        reasons = ", ".join(f"{row['check']} {row['state']} ({row['error']['kind']})"
                            for row in failed)
        text = f"{len(failed)} of {len(rows)} checks failed: {reasons}"
    else:
        text = f"{len(rows)} checks ok"
    perfdata = [item for row in rows for item in _check_perfdata(row)]
    return status_line("HEALTH", result.exit_code, text, perfdata)


def _check_perfdata(row: dict[str, Any]) -> list[Perf]:
    name, detail = row["check"], row.get("detail") or {}
    items = [Perf(f"{name}_latency", row["latency_ms"], "ms",
                  crit=above(detail.get("max_latency_ms")), min=0)]
    if row["kind"] == "disk":
        items.append(Perf(f"{name}_free", detail.get("free_percent"), "%",
                          warn=below(detail.get("warning_free_percent")),
                          crit=below(detail.get("min_free_percent")), min=0, max=100))
    elif row["kind"] == "sql":
        warn, crit = detail.get("warning"), detail.get("critical")
        bound = below if (warn is not None and crit is not None and crit < warn) else above
        items.append(Perf(f"{name}_value", detail.get("value"), warn=bound(warn),
                          crit=bound(crit)))
    elif row["kind"] == "freshness":
        items.append(Perf(f"{name}_age", detail.get("age_s"), "s",
                          crit=above(detail.get("max_age_s")), min=0))
    return items
