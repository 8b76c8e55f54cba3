"""``opsctl schedule show|render``: the ``[schedule]`` section, judged and deployed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import nagios, render
from opsctl.cli.commands.status import age, success_ages
from opsctl.cli.nagios import ReportFormat
from opsctl.cli.session import Session, guarded
from opsctl.domain.nagios import Perf, above, status_line
from opsctl.domain.units import MISSING
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import schedule_show
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

app = typer.Typer(help="When the jobs run: the schedule section of the configuration, "
                  "checked and deployed.",
                  no_args_is_help=True)


@app.command("show", epilog="Examples: opsctl schedule show  (exit 2 when a job is overdue)"
             "  |  opsctl schedule show --format nagios")
def show(
    ctx: typer.Context,
    format_: Annotated[ReportFormat, typer.Option("--format", help=nagios.FORMAT_HELP)
    ] = ReportFormat.events,
) -> None:
    """Per job: cron expression, next 3 fire times (UTC), last run, last success and
    whether it is overdue (the dead man's switch); exit 2 when a job is overdue."""
    session = Session.of(ctx)
    nagios.use(session, format_, "SCHEDULE", nagios_line)
    guarded(session, lambda: _show(session))


def nagios_line(result: JobResult) -> str:
    jobs = result.fields["jobs"]
    overdue = len(result.fields["overdue_jobs"])
    perfdata = [Perf("overdue_jobs", overdue, crit=above(0), min=0, max=len(jobs)),
                *success_ages(result, result.extra["judged"].now)]
    return status_line("SCHEDULE", result.exit_code, result.message, perfdata)


def _show(session: Session) -> JobResult:
    from opsctl.adapters.db.job_status import DbJobStatus

    config = session.settings.schedule
    params = schedule_show.ScheduleParams(config.jobs(), config.grace_td)
    context = JobContext(schedule_show.JOB, session.runtime,
                         Emitter(session.runtime, None, session.secrets()))
    source = DbJobStatus(session.database(read_only=True))
    try:
        return schedule_show.run(context, source, params)
    finally:
        source.close()
        source.db.dispose()


@render.register(schedule_show.SUMMARY_TYPE)
def _render(out: Console, result: JobResult) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    now: datetime = result.extra["judged"].now
    out.print(Text.assemble((result.state.upper(), render.STATE_STYLES.get(result.state, "")),
                            " ", result.message, f" (grace {result.fields['grace']})"))
    # Job names and verdicts never shrink; the fire times wrap. Below 72 columns the last
    # run gives way to the last success, which is what overdue is judged on.
    narrow = out.width < 72
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), pad_edge=False,
                  collapse_padding=True)
    table.add_column("job", no_wrap=True, min_width=18)
    table.add_column("cron", no_wrap=True)
    table.add_column("next (UTC)", min_width=11, ratio=1)
    if not narrow:
        table.add_column("last\nrun", justify="right", no_wrap=True)
    table.add_column("last\nok", justify="right", no_wrap=True)
    table.add_column("overdue", no_wrap=True, min_width=7)
    for row in result.fields["jobs"]:
        cells = _cells(row, now)
        table.add_row(*(cells[:3] + cells[4:] if narrow else cells))
    out.print(table)


def _cells(row: dict[str, Any], now: datetime) -> list[str | Text]:
    from rich.text import Text

    overdue = (Text("OVERDUE", "bold red") if row["overdue"]
               else Text("running", "cyan") if row["running"] else Text("no", "dim"))
    times = [_when(t, now) for t in row["next_runs"]]
    # Same-day times share a line; dated ones get a line each.
    joined = "  ".join(times) if all(len(t) == 5 for t in times) else "\n".join(times)
    return [Text(row["job"]), Text(row["cron"] or "off"), joined or MISSING,
            age(now, row["last_run_at"]), age(now, row["last_success_at"]), overdue]


def _when(moment: datetime, now: datetime) -> str:
    """Today's times as HH:MM, this week's with the weekday, later ones with the date."""
    if moment.date() == now.date():
        return f"{moment:%H:%M}"
    if (moment.date() - now.date()).days < 7:
        return f"{moment:%a %H:%M}"
    return f"{moment:%b} {moment.day} {moment:%H:%M}"


class Target(StrEnum):
    crontab = "crontab"
    systemd = "systemd"
    kubernetes = "kubernetes"


RENDERED = "schedule_rendered"


@app.command("render", epilog="Examples: opsctl schedule render --target crontab | "
             "crontab -u opsctl -\n\n"
             "opsctl schedule render --target systemd --out /etc/systemd/system")
def render_command(
    ctx: typer.Context,
    target: Annotated[Target, typer.Option("--target", help="What to render for.")],
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Write the files into DIR (created if missing, all "
        "files or none) and print the summary; without it the text goes to stdout.")] = None,
) -> None:
    """Deployment files made from the schedule section of the configuration: a crontab,
    systemd .service/.timer units, or Kubernetes CronJobs with a ConfigMap skeleton."""
    session = Session.of(ctx)
    guarded(session, lambda: _render_files(session, target, out))


def _render_files(session: Session, target: Target, out: Path | None) -> JobResult:
    from opsctl.deploy import crontab, files, kubernetes, systemd

    renderer = {"crontab": crontab, "systemd": systemd, "kubernetes": kubernetes}[target.value]
    rendered = renderer.render(session.settings)
    if out is None:
        # The files themselves are the output, whatever --output says.
        session.runtime.output = "text"
        session.runtime.stdout.write(_concatenated(rendered))
        return JobResult(RENDERED, "", "ok", ExitCode.OK, extra={"quiet": True})
    count = f"{len(rendered)} {target.value} file{'s' if len(rendered) != 1 else ''}"
    result = JobResult(RENDERED, f"{count} written to {out}", "ok", ExitCode.OK,
                       {"target": target.value, "out": str(out), "files": list(rendered)})
    return session.write_files(result, [out / name for name in rendered],
                               lambda: files.write_all(out, rendered))


def _concatenated(rendered: dict[str, str]) -> str:
    if len(rendered) == 1:
        return next(iter(rendered.values()))
    return "\n".join(f"# ==> {name} <==\n{text}" for name, text in rendered.items())


@render.register(RENDERED)
def _render_written(out: Console, result: JobResult) -> None:
    from rich.text import Text

    if result.extra.get("quiet"):
        return
    out.print(Text(result.message))
    for name in result.fields["files"]:
        out.print(Text(f"  {name}"))
