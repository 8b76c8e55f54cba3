"""``opsctl metrics aggregate``."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import pages, render
from opsctl.cli.session import Session, report_error
from opsctl.domain.durations import parse_duration
from opsctl.domain.units import human_bytes, human_count, human_ms, human_percent
from opsctl.domain.windows import parse_timestamp
from opsctl.errors import OpsctlError, UsageError
from opsctl.jobs import metrics_aggregate, metrics_report
from opsctl.jobs.context import JobContext
from opsctl.jobs.metrics_aggregate import JOB, SUMMARY_TYPE, AggregateParams, MetricsPorts
from opsctl.jobs.metrics_report import ReportParams
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from opsctl.jobs import metrics_backfill

app = typer.Typer(help="Aggregate export metrics.", no_args_is_help=True)


class PeriodChoice(StrEnum):
    hourly = "hourly"
    daily = "daily"


@app.command("aggregate", epilog="\b\nExamples:\n  opsctl metrics aggregate\n  opsctl metrics aggregate --store\n  opsctl metrics aggregate --window 7d -o text\n  opsctl metrics aggregate --since 2026-11-20T09:00Z --until 2026-11-20T10:00Z --store")
def aggregate(
    ctx: typer.Context,
    period: Annotated[
        PeriodChoice | None,
        typer.Option(
            "--period",
            help="Default window: the last complete hour or UTC day. "
            "[default: metrics.period, hourly]",
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window", metavar="DUR", help="Trailing window ending now instead, e.g. 15m, 7d."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TS", help="Window start, ISO 8601 (no zone means UTC)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="TS", help="Window end, excluded (needs --since). [default: now]"
        ),
    ] = None,
    store: Annotated[
        bool,
        typer.Option(
            "--store", help="Upsert the result into opsctl_metric_rollups (takes the job lock)."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Compute and report only; store nothing, record no run."),
    ] = False,
    backfill: Annotated[
        str | None,
        typer.Option(
            "--backfill", metavar="DUR",
            help="With --store: every complete period of the last DUR, stored where missing "
            "or changed.",
        ),
    ] = None,
) -> None:
    """Success and failure rates, durations (avg, p50, p95, p99), file sizes, volume, per
    format and top error types over [start, end); exit 1 above metrics.warn_avg_duration_ms or
    metrics.warn_exports_per_hour."""
    session = Session.of(ctx)
    if backfill is not None:
        _backfill(session, backfill, period, window, since, until, store, dry_run)
        return
    try:
        params = _params(session, period, window, since, until, store)
    except OpsctlError as exc:
        report_error(session.env, exc, job=JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.metrics import DbMetricsSource
        from opsctl.adapters.db.rollups import DbRollupStore

        source = session.settings.source
        db = session.database(read_only=job_ctx.dry_run)
        ports = MetricsPorts(
            DbMetricsSource(db, source.table, source.columns.model_dump()), DbRollupStore(db)
        )
        return metrics_aggregate.run(job_ctx, ports, params)

    session.run_job(JOB, SUMMARY_TYPE, work, mutating=store, dry_run=dry_run)


def _backfill(
    session: Session, span: str, period: PeriodChoice | None, window: str | None,
    since: str | None, until: str | None, store: bool, dry_run: bool,
) -> None:
    from opsctl.jobs import metrics_backfill

    try:
        params = _backfill_params(session, span, period, (window, since, until), store)
    except OpsctlError as exc:
        report_error(session.env, exc, job=JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.period_metrics import DbPeriodMetrics
        from opsctl.adapters.db.rollups import DbRollupStore

        source = session.settings.source
        db = session.database(read_only=job_ctx.dry_run)
        ports = metrics_backfill.BackfillPorts(
            DbPeriodMetrics(db, source.table, source.columns.model_dump()), DbRollupStore(db)
        )
        return metrics_backfill.run(job_ctx, ports, params)

    session.run_job(JOB, metrics_backfill.SUMMARY_TYPE, work, mutating=True, dry_run=dry_run)


def _backfill_params(
    session: Session, span: str, period: PeriodChoice | None,
    window_flags: tuple[str | None, ...], store: bool,
) -> metrics_backfill.BackfillParams:
    from opsctl.jobs import metrics_backfill

    if not store:
        raise UsageError("--backfill needs --store (it stores rollups; add --dry-run to preview)")
    if any(flag is not None for flag in window_flags):
        raise UsageError("--backfill cannot be combined with --window/--since/--until")
    try:
        length = parse_duration(span)
    except ValueError as exc:
        raise UsageError(f"--backfill: {exc}") from None
    chosen = period.value if period is not None else session.settings.metrics.period
    metrics_backfill.backfill_window(session.runtime.clock(), chosen, length)
    return metrics_backfill.BackfillParams(
        period=chosen, span=length, top_error_types=session.settings.metrics.top_error_types
    )


def _params(
    session: Session,
    period: PeriodChoice | None,
    window: str | None,
    since: str | None,
    until: str | None,
    store: bool,
) -> AggregateParams:
    """Flags first (a bad flag is 64 even with a broken config), then the config."""
    try:
        length = parse_duration(window) if window is not None else None
    except ValueError as exc:
        raise UsageError(f"--window: {exc}") from None
    moments = {}
    for flag, text in (("--since", since), ("--until", until)):
        try:
            moments[flag] = parse_timestamp(text) if text is not None else None
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    flags = AggregateParams(
        window=length, since=moments["--since"], until=moments["--until"], store=store
    )
    # The combination is checked before the config is read and before the job takes its
    # lock; the job resolves the window again against its own clock.
    metrics_aggregate.window_for(flags, session.runtime.clock())
    config = session.settings.metrics
    params = replace(
        flags,
        period=period.value if period is not None else config.period,
        top_error_types=config.top_error_types,
        warn_avg_duration_ms=config.warn_avg_duration_ms,
        warn_exports_per_hour=config.warn_exports_per_hour,
    )
    return params


@app.command("report", epilog="\b\nExamples:\n  opsctl metrics report\n  opsctl metrics report --since 30d\n  opsctl metrics report --period daily --since 90d -o json")
def report(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DUR",
                     help="How far back, e.g. 24h, 30d. [default: 24h hourly, 30d daily]"),
    ] = None,
    period: Annotated[
        PeriodChoice | None,
        typer.Option("--period", help="One point per UTC hour or day. "
                     "[default: metrics.period, hourly]"),
    ] = None,
    html: pages.HtmlOption = None,
) -> None:
    """Volume, failure rate and p95 duration per period, as charts; read-only, exit 0.

    Stored rollups (metrics aggregate --store) are used where they exist, the other periods
    are computed from the export table. --html also writes the charts as a web page.
    """
    session = Session.of(ctx)
    try:
        params = _report_params(session, since, period)
        page = pages.checked(html)
    except OpsctlError as exc:
        report_error(session.env, exc, job=metrics_report.JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.metric_series import DbMetricSeries

        source = session.settings.source
        series = DbMetricSeries(session.database(read_only=True), source.table,
                                source.columns.model_dump())
        result = metrics_report.run(job_ctx, series, params)
        if page is None:
            return result
        return session.write_files(result, [page], lambda: pages.write_report_page(
            page, result, session.runtime))

    # Read-only like a dry run: no schema, no lock, no run record, READ ONLY transactions.
    session.run_job(metrics_report.JOB, metrics_report.SUMMARY_TYPE, work, dry_run=True)


def _report_params(
    session: Session, since: str | None, period: PeriodChoice | None
) -> ReportParams:
    try:
        length = parse_duration(since) if since is not None else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    flags = ReportParams(period=period.value if period is not None else "hourly", since=length)
    metrics_report.span_for(flags, session.runtime.clock())  # a bad span is 64 before config
    settings = session.settings
    return replace(flags, period=period.value if period is not None else settings.metrics.period,
                   failure_rate_threshold=settings.failure_rate.threshold)


@render.register(metrics_report.SUMMARY_TYPE)
def _render_report(out: Console, result: JobResult) -> None:
    from rich.text import Text

    from opsctl.cli.charts import Chart, fold

    f = result.fields
    series: list[dict[str, Any]] = f["series"]
    out.print(Text(f"{f['period']} metrics, {f['periods']} periods: "
                   f"{_stamp(f['window_start'])} → {_stamp(f['window_end'])} UTC"))
    if not f["total"]:
        out.print(Text("no exports in these periods: nothing to chart", style="yellow"))
        return
    first = _stamp(series[0]["window_start"])[5:] if series else ""
    last = _stamp(series[-1]["window_start"])[5:] if series else ""
    unit = "hour" if f["period"] == "hourly" else "day"
    threshold = f["failure_rate_threshold"]
    charts = [
        Chart(f"exports per {unit}", [float(p["total"]) for p in series],
              lambda v: human_count(round(v)), first=first, last=last),
        Chart(f"failure rate (threshold {human_percent(threshold)} ╌)",
              [p["failure_rate"] for p in series], _short_percent, threshold=threshold,
              first=first, last=last),
        Chart("p95 duration of completed exports", [p["p95_duration_ms"] for p in series],
              human_ms, first=first, last=last),
    ]
    axis = max(chart.axis_width() for chart in charts)
    _, per_column = fold([None] * len(series), Chart.plot_width(out.width, axis))
    if per_column > 1:
        out.print(Text(f"one column = {per_column} periods, the highest shown", style="dim"))
    for chart in charts:
        for line in chart.lines(out.width, axis):
            out.print(line, crop=True, overflow="crop", no_wrap=True)
    busiest = max(series, key=lambda p: p["total"], default=None)
    above = sum(1 for p in series if (p["failure_rate"] or 0) > threshold)
    summary = Text(f"{human_count(f['total'])} exports, {human_count(f['failed'])} failed "
                   f"({human_percent(f['failure_rate'])})")
    if busiest and busiest["total"]:
        summary.append(f"; busiest {_stamp(busiest['window_start'])[5:]} with "
                       f"{human_count(busiest['total'])}")
    out.print(summary)
    out.print(Text(f"{above} of {len(series)} periods above the failure-rate threshold",
                   style="red" if above else ""))
    out.print(Text(f"{f['stored_periods']} periods from stored rollups, "
                   f"{f['computed_periods']} computed now", style="dim"))


def _short_percent(ratio: float) -> str:
    return f"{ratio * 100:.0f} %" if ratio >= 0.1 else f"{ratio * 100:.1f} %"


def _stamp(stamp: str) -> str:
    """``2026-11-23T12:00:00.000Z`` as ``2026-11-23 12:00`` for people."""
    return stamp[:16].replace("T", " ")


@render.register(SUMMARY_TYPE)
def _render(out: Console, result: JobResult) -> None:
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    f = result.fields
    overview = Table(show_header=False, box=None, pad_edge=False)
    overview.add_column(style="bold")
    overview.add_column()
    overview.add_row("window", f"{f['window_start']} → {f['window_end']} ({f['period']})")
    overview.add_row(
        "exports",
        f"{human_count(f['total_exports'])} "
        f"({f['exports_per_hour']:,.1f}/h): {human_count(f['completed'])} "
        f"completed, {human_count(f['failed'])} failed",
    )
    overview.add_row("success rate", human_percent(f["success_rate"]))
    overview.add_row("failure rate", human_percent(f["failure_rate"]))
    overview.add_row(
        "duration",
        "avg {} · p50 {} · p95 {} · p99 {}".format(
            *(
                human_ms(f[k])
                for k in (
                    "avg_duration_ms",
                    "p50_duration_ms",
                    "p95_duration_ms",
                    "p99_duration_ms",
                )
            )
        ),
    )
    overview.add_row(
        "file sizes",
        f"{human_bytes(f['total_file_size_bytes'])} total, "
        f"{human_bytes(f['avg_file_size_bytes'])} avg",
    )
    overview.add_row(
        "state",
        render.styled_state(result.state)
        + (" · stored" if f.get("stored") else "")
        + (" · dry run" if f.get("dry_run") else ""),
    )
    parts: list[Any] = [overview]
    if f["by_format"]:
        parts.append(_formats_table(f["by_format"]))
    if f["top_error_types"]:
        errors = Table(
            title="top error types", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
        )
        errors.add_column("error type")
        errors.add_column("count", justify="right")
        for entry in f["top_error_types"]:
            errors.add_row(escape(entry["error_type"]), human_count(entry["count"]))
        parts.append(errors)
    out.print(Panel(Group(*parts), title="export metrics", title_align="left"))


def _formats_table(by_format: dict[str, dict[str, Any]]) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="by format", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("format", "total", "done", "failed", "success", "avg", "p95", "size"):
        table.add_column(name, justify="left" if name == "format" else "right", no_wrap=True)
    for name, row in by_format.items():
        table.add_row(
            escape(name),
            human_count(row["total"]),
            human_count(row["completed"]),
            human_count(row["failed"]),
            human_percent(row["success_rate"]),
            human_ms(row["avg_duration_ms"]),
            human_ms(row["p95_duration_ms"]),
            human_bytes(row["total_file_size_bytes"]),
        )
    return table
