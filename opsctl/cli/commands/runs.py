"""``opsctl runs list|stats``: reports over opsctl's own run history.

They are read-only reports, not jobs: no lock, not recorded in history, and the database
is opened read-only so a report can never write (on SQLite it is not even created).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

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

    from rich.console import Console

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


@app.command("list")
def list_(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option(
        "--job", metavar="NAME", parser=_job_name,
        help=f"Only this job ({', '.join(JOB_NAMES)}).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most N runs.")] = 20,
    since: Annotated[timedelta | None, typer.Option(
        "--since", metavar="DUR", parser=_duration,
        help="Only runs finished in the last DUR (30m, 1d).")] = None,
) -> None:
    """The latest runs of opsctl's jobs, newest first (by finish time)."""
    session = Session.of(ctx)
    params = runs_list.ListParams(job=job, limit=limit, since=since)
    guarded(session, lambda: _report(session, "runs.list",
                                     lambda c, h: runs_list.run(c, h, params)))


@app.command("stats")
def stats(
    ctx: typer.Context,
    window: Annotated[timedelta | None, typer.Option(
        "--window", metavar="DUR", parser=_duration,
        help="Look back this far (default: [runs] window, 7d).")] = None,
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
# Tables for a terminal: one line per row, the last column cut with an ellipsis rather than
# wrapped, so a long history of failures stays scannable. Full texts are in the JSON events.

_SHORT_REASONS = {
    runs_stats.FAILURE_RATE: "failure rate",
    runs_stats.CONSECUTIVE_FAILURES: "streak",
    runs_stats.AVG_DURATION: "slow",
}
_RIGHT = frozenset({"duration", "exit", "runs", "ok", "avg", "p95", "streak"})


def _print_table(out: Console, title: str, columns: list[str], rows: list[list[str]]) -> None:
    """Fixed columns at their content's width; the last one gets what is left of the line.

    Rich would otherwise shrink every column alike and cut job names and states.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    fixed = columns[:-1]
    used = sum(
        max([len(name)] + [Text.from_markup(row[i]).cell_len for row in rows]) + 3
        for i, name in enumerate(fixed)
    )
    for name in fixed:
        table.add_column(name, no_wrap=True, justify="right" if name in _RIGHT else "left")
    table.add_column(columns[-1], no_wrap=True, overflow="ellipsis",
                     max_width=max(12, out.width - used - 2))
    for row in rows:
        table.add_row(*row)
    out.print(table)


@render.register(runs_list.SUMMARY_TYPE)
def _render_list(out: Console, result: JobResult) -> None:
    from rich.markup import escape

    rows = [
        [f"{row['started_at']:%m-%d %H:%M:%S}", row["job"], render.styled_state(row["state"]),
         human_ms(row["duration_ms"]), str(row["job_exit_code"]), escape(row["summary"])]
        for row in result.extra["runs"]
    ]
    _print_table(out, f"{result.message} (times UTC)",
                 ["started", "job", "state", "duration", "exit", "summary"], rows)


@render.register(runs_stats.SUMMARY_TYPE)
def _render_stats(out: Console, result: JobResult) -> None:
    from rich.markup import escape

    rules: runs_stats.AlertRules = result.extra["rules"]
    now: datetime = result.fields["window_end"]
    rows = [
        [row["job"], render.styled_state(row["state"]), str(row["runs"]),
         human_percent(row["success_rate"]), human_ms(row["avg_duration_ms"]),
         human_ms(row["p95_duration_ms"]),
         f"{_age(now, row['last_run_at'])} {render.styled_state(row['last_state'])}",
         _age(now, row["last_success_at"]), str(row["consecutive_failures"]),
         ", ".join(_SHORT_REASONS.get(r, r) for r in row["reasons"]) or MISSING]
        for row in result.extra["jobs"]
    ]
    _print_table(out, result.message, ["job", "state", "runs", "ok", "avg", "p95",
                                       "last run (ago)", "last ok (ago)", "streak", "reasons"],
                 rows)
    for row in result.extra["jobs"]:
        for reason in row["reasons"]:
            out.print(f"[bold red]alert[/] {row['job']}: "
                      f"{escape(runs_stats.describe(reason, row, rules))}")


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
