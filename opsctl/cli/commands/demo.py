"""``opsctl demo seed``: fill the export table and the storage root with sample exports."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from opsctl.cli import render, startup
from opsctl.cli.session import Session, report_error
from opsctl.domain.units import human_count
from opsctl.errors import OpsctlError, UsageError
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import RunBookkeeping, RunRecord

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.jobs.demo_seed import SeedParams

app = typer.Typer(help="Seed realistic demo data.", no_args_is_help=True)

JOB, SUMMARY = "demo.seed", "demo_seeded"


@app.command("seed", epilog="\b\nExamples:\n  opsctl demo seed\n  opsctl demo seed --rows 100000 --days 60 --seed 7 --no-files\n  opsctl demo seed --truncate --dry-run")
def seed(
    ctx: typer.Context,
    rows: Annotated[int, typer.Option("--rows", min=1, metavar="N", help="Exports to create.")] = 10_000,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, metavar="N",
                                      help="Spread created_at over this many days up to now.")
                    ] = 45,
    seed: Annotated[int | None, typer.Option(
        "--seed", min=0, metavar="N", help="Same seed, same rows (ids, users, sizes). Default: random, "
        "reported in the summary.")] = None,
    files: Annotated[bool, typer.Option(
        "--files/--no-files", show_default=False, help="Write the export files under the storage root "
        "(--no-files for large benchmark tables).")] = True,
    truncate: Annotated[bool, typer.Option(
        "--truncate", help="Empty the table first instead of appending.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be written; write nothing.")] = False,
) -> None:
    """Create the source table if missing and fill it with realistic exports: some failed,
    some in flight, some expired, some older than the log retention."""
    from opsctl.jobs.demo_seed import SeedParams

    session = Session.of(ctx)
    params = SeedParams(rows=rows, days=days, truncate=truncate,
                        seed=secrets.randbelow(1_000_000) if seed is None else seed)
    _run_without_history(session, _work(session, params, files), dry_run=dry_run)


def _work(session: Session, params: SeedParams, files: bool
          ) -> Callable[[JobContext], JobResult]:
    def work(job_ctx: JobContext) -> JobResult:
        from dataclasses import replace

        from opsctl.adapters.db.seed import ExportTableSeeder
        from opsctl.adapters.db.tables import source_table
        from opsctl.adapters.storage.demo_files import LocalExportFiles
        from opsctl.jobs import demo_seed
        from opsctl.settings import storage_root

        settings = session.settings
        writer = None
        if files:
            if settings.storage.backend != "local":
                raise UsageError(f"demo seed writes files to local storage only, and "
                                 f"storage.backend is {settings.storage.backend!r}: "
                                 "pass --no-files")
            writer = LocalExportFiles(storage_root(settings, session.runtime.env))
        table = source_table(settings.source.table, settings.source.columns.model_dump())
        seeder = ExportTableSeeder(session.database(read_only=job_ctx.dry_run), table)
        return demo_seed.run(job_ctx, demo_seed.SeedPorts(seeder, writer),
                             replace(params, table=settings.source.table))

    return work


class _WithoutHistory:
    """Schema and lock like a job, but no run record: seeding is set-up, not upkeep, and
    must not show up in ``runs stats`` or satisfy a freshness check."""

    def __init__(self, inner: RunBookkeeping) -> None:
        self.inner = inner

    def ensure_schema(self) -> None:
        self.inner.ensure_schema()

    def job_lock(self, job: str) -> AbstractContextManager[None]:
        return self.inner.job_lock(job)

    def record_run(self, run: RunRecord) -> None:
        pass

    def prune_runs(self, older_than: datetime) -> int:
        return 0


def _run_without_history(session: Session, work: Callable[[JobContext], JobResult], *,
                         dry_run: bool) -> None:
    # Session.run_job minus the history: same runner, so the lock, the signals (SIGTERM
    # keeps the rows written so far and still prints the summary) and the single
    # summary-or-error event behave as for every job.
    from opsctl.adapters.db.runs import DbBookkeeping
    from opsctl.jobs.runner import JobSpec, execute

    emitter = session.emitter(JOB)
    dry = session.dry_run(dry_run)
    try:
        bookkeeping = _WithoutHistory(DbBookkeeping(session.database(read_only=dry)))
    except OpsctlError as exc:
        session.finish(ExitCode(report_error(session.env, exc, job=JOB)))
        return
    spec = JobSpec(JOB, SUMMARY, mutating=True, cooperative=True, dry_run=dry)
    job_ctx = JobContext(JOB, session.runtime, emitter, dry_run=dry,
                         progress=render.progress_factory(session.runtime))
    startup.work_begins()
    outcome = execute(spec, session.runtime, emitter, bookkeeping, lambda: work(job_ctx))
    render.outcome(session.runtime, outcome)
    session.database(read_only=dry).dispose()
    session.finish(outcome.exit_code)


@render.register(SUMMARY)
def _render_seeded(out: Console, result: JobResult) -> None:
    from rich.table import Table
    from rich.text import Text

    fields = result.fields
    render.headline(out, result)
    table = Table(show_header=False, box=None, padding=(0, 2), pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("state", render.state_text(result.state))
    table.add_row("table", Text(f"{fields['table']}" + (" (created)" if fields["table_created"]
                                                          else "")))
    if fields["truncated"]:
        table.add_row("rows removed", human_count(fields["rows_removed"]))
    table.add_row("rows", human_count(fields["rows"]))
    for name, counts in (("by status", fields["by_status"]), ("by format", fields["by_format"])):
        table.add_row(name, Text(", ".join(f"{k} {human_count(v)}" for k, v in counts.items())))
    table.add_row("files", Text(f"{human_count(fields['files_written'])} under "
                                f"{fields['storage_root']}" if fields["storage_root"]
                                else "not written"))
    table.add_row("created_at", f"{fields['oldest_created_at']} … {fields['newest_created_at']}")
    table.add_row("seed", f"{fields['seed']} (--seed {fields['seed']} repeats these rows)")
    out.print(table)
    if result.state == "ok" and not fields["dry_run"]:
        out.print("next: opsctl metrics aggregate --window 7d · opsctl failure-rate check · "
                  "opsctl files cleanup --dry-run · opsctl logs stats")
