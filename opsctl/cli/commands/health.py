"""``opsctl health probe``."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from opsctl.cli import render
from opsctl.cli.session import Session, report_error
from opsctl.domain.units import human_ms
from opsctl.errors import OpsctlError
from opsctl.jobs import health_probe
from opsctl.jobs.context import JobContext
from opsctl.jobs.health_probe import CHECK_EVENT, JOB, SUMMARY, ProbeParams, select_checks
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from opsctl.settings.health import HealthCheck

app = typer.Typer(help="Probe the health of the export system.", no_args_is_help=True)


class ProbeFormat(StrEnum):
    events = "events"
    nagios = "nagios"


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
    format_: Annotated[ProbeFormat, typer.Option(
        "--format",
        help="events: what --output says (JSON lines or a table); nagios: one "
        "monitoring-plugins status line with perfdata, whatever --output says.")
    ] = ProbeFormat.events,
) -> None:
    """Run the [[health.checks]] in parallel; exit 0 healthy, 1 degraded, 2 unhealthy.

    With no checks configured: the database, and the export storage when there is one.
    """
    session = Session.of(ctx)
    try:
        checks, deadline = _plan(session, check or [], timeout)
    except OpsctlError as exc:
        report_error(session.env, exc, job=JOB)
        return
    nagios = format_ is ProbeFormat.nagios
    if nagios:
        # A monitoring plugin's stdout is its status line, whatever --output says.
        session.runtime.output, session.runtime.color = "text", False

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.checks import catalog

        configured = catalog.build(checks, session.settings, session.runtime.env,
                                   session.runtime.clock, dry_run=job_ctx.dry_run)
        result = health_probe.run(job_ctx, configured, ProbeParams(timeout_s=deadline))
        if nagios:
            result.extra["view"] = "nagios"
        return result

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
    rows: list[dict[str, Any]] | None = result.extra.get("checks")
    if result.extra.get("view") == "nagios":
        out.print(nagios_line(result), markup=False, highlight=False, crop=False,
                  soft_wrap=True)
        return
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


_NAGIOS_STATES = {"healthy": "OK", "degraded": "WARNING", "unhealthy": "CRITICAL"}


def nagios_line(result: JobResult) -> str:
    """``OK - 4 checks | db=3ms;;; api=12ms;;;``: the monitoring-plugins output format."""
    status = _NAGIOS_STATES.get(result.state, "UNKNOWN")
    rows: list[dict[str, Any]] = result.extra.get("checks") or []
    failed = [row for row in rows if row["state"] != "ok"]
    if not rows:
        text = result.message
    elif failed:
        reasons = ", ".join(f"{row['check']} {row['state']} ({row['error']['kind']})"
                            for row in failed)
        text = f"{len(failed)} of {len(rows)} checks failed: {reasons}"
    else:
        text = f"{len(rows)} checks"
    perfdata = " ".join(f"{_perf_label(row['check'])}={row['latency_ms']}ms;;;" for row in rows)
    line = f"{status} - {text}".replace("|", "/")
    return f"{line} | {perfdata}" if perfdata else line


def _perf_label(name: str) -> str:
    # Plugin guidelines: labels may not contain = or '; quote those with spaces.
    label = name.replace("=", "_").replace("'", "_")
    return f"'{label}'" if any(c.isspace() for c in label) else label
