"""``opsctl runs list|stats``: reports over opsctl's own run history.

They are read-only reports, not jobs: no lock, not recorded in history, and the database
is opened read-only so a report can never write (on SQLite it is not even created).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import nagios, render
from opsctl.cli.nagios import ReportFormat
from opsctl.cli.session import Session, guarded
from opsctl.domain.durations import parse_duration
from opsctl.domain.job_names import JOB_NAMES
from opsctl.domain.nagios import Perf, above, below, status_line
from opsctl.domain.units import MISSING, human_ms, human_percent
from opsctl.events import Emitter
from opsctl.jobs import runs_list, runs_stats
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console, RenderableType

    from opsctl.ports import RunHistory

app = typer.Typer(help="History of opsctl's own runs.", no_args_is_help=True)

Report = Callable[[JobContext, "RunHistory"], JobResult]


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _job_name(text: str) -> str:
    if text not in JOB_NAMES:
        raise typer.BadParameter(f"{text!r} is not a job; expected one of: "
                                 f"{', '.join(JOB_NAMES)}")
    return text


@app.command("list", epilog="\b\nExamples:\n  opsctl runs list\n  opsctl runs list --job files.cleanup --since 1d\n  opsctl runs list --limit 100 -o json")
def list_(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option(
        "--job", metavar="NAME", parser=_job_name,
        help=f"Only this job ({', '.join(JOB_NAMES)}).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="At most N runs.")] = 20,
    since: Annotated[timedelta | None, typer.Option(
        "--since", metavar="DUR", parser=_duration,
        help="Only runs finished in the last DUR (30m, 1d).")] = None,
) -> None:
    """The latest runs of opsctl's jobs, newest first (by finish time)."""
    session = Session.of(ctx)
    params = runs_list.ListParams(job=job, limit=limit, since=since)
    guarded(session, lambda: _report(session, "runs.list",
                                     lambda c, h: runs_list.run(c, h, params)))


@app.command("stats", epilog="\b\nExamples:\n  opsctl runs stats\n  opsctl runs stats --window 1d")
def stats(
    ctx: typer.Context,
    window: Annotated[timedelta | None, typer.Option(
        "--window", metavar="DUR", parser=_duration,
        help="Look back this far. [default: runs.window, 7d]")] = None,
    format_: Annotated[ReportFormat, typer.Option("--format", help=nagios.FORMAT_HELP)
    ] = ReportFormat.events,
) -> None:
    """Per job: runs, success rate, durations, last run, failure streak; exit 2 on alert."""
    session = Session.of(ctx)
    nagios.use(session, format_, "RUNS_STATS", nagios_line)

    def action() -> JobResult:
        config = session.settings.runs
        rules = runs_stats.AlertRules(
            failure_rate=config.alert_failure_rate,
            min_runs=config.alert_min_runs,
            consecutive_failures=config.alert_consecutive_failures,
            max_avg_duration=config.alert_max_avg_duration_td,
        )
        params = runs_stats.StatsParams(window=window or config.window_td, rules=rules)
        alertmanager = session.alertmanager()
        return _report(session, "runs.stats",
                       lambda c, h: runs_stats.run(c, h, params, alertmanager))

    guarded(session, action)


def _report(session: Session, name: str, job: Report) -> JobResult:
    """Run a report without the job runner: no lock to take and no run to record, but the
    same context and events a job gets, so the job modules stay plain functions."""
    from opsctl.adapters.db.run_history import DbRunHistory

    # In text mode the table shows every row, so per-row events go nowhere (no sink).
    emitter = Emitter(session.runtime, None, session.secrets())
    context = JobContext(name, session.runtime, emitter, dry_run=session.dry_run())
    db = session.database(read_only=True)
    try:
        return job(context, DbRunHistory(db))
    finally:
        db.dispose()


# --- text views ---------------------------------------------------------------------------
# Tables for a terminal, readable at 80 columns: whole columns are left out on a narrow
# terminal (least useful first) rather than every column cut to "s…", and the text column
# (summary, reasons) folds onto more lines instead of losing its end.

_SHORT_REASONS = {
    runs_stats.FAILURE_RATE: "failure rate",
    runs_stats.CONSECUTIVE_FAILURES: "streak",
    runs_stats.AVG_DURATION: "slow",
}
_Column = render.Column

# What a person looks for first in each job's stored summary.
_SUMMARY_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "metrics.aggregate": (("total_exports", "exports"), ("failure_rate", "failure rate")),
    "failure-rate.check": (("failure_rate", "failure rate"), ("total", "finished")),
    "files.cleanup": (("deleted_count", "deleted"), ("missing_count", "missing"),
                      ("failed_count", "failed")),
    "logs.cleanup": (("deleted_count", "deleted"), ("archived_count", "archived")),
    "health.probe": (("checks_failed", "checks failed"), ("checks_total", "of")),
}


@render.register(runs_list.SUMMARY_TYPE)
def _render_list(out: Console, result: JobResult) -> None:
    from rich.text import Text

    render.headline(out, result)
    rows: list[list[RenderableType]] = [
        [Text(f"{row['started_at']:%m-%d %H:%M}"), Text(row["job"]),
         render.state_text(row["state"]), human_ms(row["duration_ms"]),
         str(row["job_exit_code"]), Text(_summary_text(row))]
        for row in result.extra["runs"]
    ]
    columns = [_Column("started (UTC)"), _Column("job"), _Column("state"),
               _Column("took", drop=2, right=True), _Column("exit", drop=1, right=True),
               _Column("summary", flexible=True)]
    if rows:
        out.print(render.fitted_table(out, columns, rows))


def _summary_text(row: dict[str, Any]) -> str:
    """A run's outcome in words: its error, or the numbers that matter for its job."""
    error = row.get("error")
    if error:
        return f"{error.get('kind', 'error')}: {error.get('message', '')}"
    details: dict[str, Any] = row.get("details") or {}
    keys = _SUMMARY_KEYS.get(row["job"])
    if keys and all(key in details for key, _ in keys):
        return ", ".join(f"{label} {_number(details[key], key)}" for key, label in keys)
    return str(row["summary"]).replace("=", " ").replace("_", " ")


def _number(value: Any, key: str) -> str:
    if value is None:
        return MISSING
    if key.endswith("rate"):
        return human_percent(float(value))
    return f"{value:,}" if isinstance(value, int) else str(value)


@render.register(runs_stats.SUMMARY_TYPE)
def _render_stats(out: Console, result: JobResult) -> None:
    from rich.text import Text

    rules: runs_stats.AlertRules = result.extra["rules"]
    now: datetime = result.fields["window_end"]
    render.headline(out, result)
    rows: list[list[RenderableType]] = []
    for row in result.extra["jobs"]:
        last = Text(f"{_age(now, row['last_run_at'])} ")
        last.append_text(render.state_text(row["last_state"] or ""))
        rows.append([
            Text(row["job"]), render.state_text(row["state"]), str(row["runs"]),
            _percent(row["success_rate"]), human_ms(row["avg_duration_ms"]),
            human_ms(row["p95_duration_ms"]), last, _age(now, row["last_success_at"]),
            str(row["consecutive_failures"]),
            Text(", ".join(_SHORT_REASONS.get(r, r) for r in row["reasons"]) or MISSING)])
    # On a narrow terminal the reasons go first (the alert lines below spell them out).
    columns = [_Column("job"), _Column("state"), _Column("runs", right=True),
               _Column("ok", right=True), _Column("avg", drop=1, right=True),
               _Column("p95", drop=4, right=True), _Column("last run"),
               _Column("last ok", drop=2), _Column("streak", drop=3, right=True),
               _Column("reasons", drop=5, flexible=True)]
    if rows:
        out.print(render.fitted_table(out, columns, rows))
    out.print(Text("ages are times since now; ok is the share of runs that succeeded",
                   style="dim"))
    for row in result.extra["jobs"]:
        for reason in row["reasons"]:
            line = Text("alert ", style="bold red")
            line.append(f"{row['job']}: {runs_stats.describe(reason, row, rules)}")
            out.print(line)


def _percent(ratio: float | None) -> str:
    """Whole percents: the column has to stay narrow, and 99.5 % vs 99 % changes nothing."""
    return MISSING if ratio is None else f"{ratio * 100:.0f} %"


def _age(now: datetime, moment: datetime | None) -> str:
    """An age rather than a timestamp: "has it stopped?" is what this table answers."""
    if moment is None:
        return MISSING
    return human_ms(max(0.0, (now - moment).total_seconds() * 1000))


def nagios_line(result: JobResult) -> str:
    """Jobs in alert and why; per job the numbers its alert rules judge, with their levels,
    and the age of its last success (the graph that shows a job that stopped running)."""
    rules: runs_stats.AlertRules = result.extra["rules"]
    now: datetime = result.fields["window_end"]
    text = result.message
    broken = [f"{row['job']}: " + ", ".join(runs_stats.describe(reason, row, rules)
                                           for reason in row["reasons"])
              for row in result.extra["jobs"] if row["reasons"]]
    if broken:
        text += " (" + "; ".join(broken) + ")"
    perfdata = [Perf("jobs_in_alert", result.fields["jobs_in_alert"], crit=above(0), min=0)]
    for row in result.extra["jobs"]:
        job = row["job"]
        last_ok = row["last_success_at"]
        avg = row["avg_duration_ms"]
        perfdata += [
            Perf(f"{job}_runs", row["runs"], min=0),
            Perf(f"{job}_success_ratio", row["success_rate"],
                 crit=below(1 - rules.failure_rate), min=0, max=1),
            Perf(f"{job}_consecutive_failures", row["consecutive_failures"],
                 crit=above(rules.consecutive_failures - 1), min=0),
            Perf(f"{job}_avg_duration", None if avg is None else avg / 1000, "s",
                 crit=above(rules.max_avg_duration.total_seconds()), min=0),
            Perf(f"{job}_last_success_age",
                 None if last_ok is None else round((now - last_ok).total_seconds()), "s",
                 min=0),
        ]
    return status_line("RUNS_STATS", result.exit_code, text, perfdata)
