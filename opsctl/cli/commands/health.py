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
    from rich.console import Console, RenderableType

    from opsctl.settings.health import HealthCheck

app = typer.Typer(help="Probe the health of the export system.", no_args_is_help=True)


def _positive(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter("must be greater than 0")
    return value


@app.command("probe", epilog="\b\nExamples:\n  opsctl health probe\n  opsctl health probe --check db --check api --timeout 5\n  opsctl health probe --format nagios")
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
    from rich.text import Text

    rows: list[dict[str, Any]] | None = result.extra.get("checks")
    if rows is None:  # interrupted before any check reported
        render.key_values(out, result)
        return
    render.headline(out, result)
    cells: list[list[RenderableType]] = []
    for row in rows:
        error = row.get("error")
        cells.append([Text(row["check"], style="bold"), Text(row["kind"]),
                      render.state_text(row["state"]), Text(check_value(row)),
                      human_ms(row["latency_ms"]), Text(error["message"] if error else "")])
    columns = [render.Column("check"), render.Column("kind", drop=2),
               render.Column("state"), render.Column("value", drop=1, right=True),
               render.Column("latency", drop=3, right=True),
               render.Column("reason", flexible=True)]
    out.print(render.fitted_table(out, columns, cells))
    f = result.fields
    out.print(Text(f"{f['checks_total']} checks in {human_ms(f['duration_ms'])}", style="dim"))


def check_value(row: dict[str, Any]) -> str:
    """What the check measured, where it measures something: free disk, the SQL number,
    the age of the job's last success, the HTTP status."""
    detail: dict[str, Any] = row.get("detail") or {}
    if "free_percent" in detail:
        return f"{detail['free_percent']:.1f} % free"
    if "value" in detail and detail["value"] is not None:
        return f"{detail['value']:g}"
    if "age_s" in detail:
        return f"{human_ms(detail['age_s'] * 1000)} ago"
    if "http_status" in detail:
        return f"HTTP {detail['http_status']}"
    return ""


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
