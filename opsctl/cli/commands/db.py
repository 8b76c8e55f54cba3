"""``opsctl db init``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import render
from opsctl.cli.session import Session, guarded
from opsctl.exit_codes import ExitCode
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.adapters.db.database import Database

app = typer.Typer(help="opsctl's own tables.", no_args_is_help=True)


@app.command("init", epilog="\b\nExamples:\n  opsctl db init\n  opsctl db init --source-indexes --dry-run\n  opsctl --config /etc/opsctl/config.toml db init")
def init(
    ctx: typer.Context,
    source_indexes: Annotated[
        bool,
        typer.Option(
            "--source-indexes",
            help="Also create the indexes opsctl's queries want on the source table "
            "(CONCURRENTLY on PostgreSQL); with --dry-run, only print them.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be created; change nothing.")
    ] = False,
) -> None:
    """Create or upgrade opsctl's own tables (opsctl_*). Safe to run again."""
    session = Session.of(ctx)
    dry = session.dry_run(dry_run)

    def action() -> JobResult:
        from opsctl.adapters.db import migrations

        db = session.database(read_only=dry)
        if dry:
            pending = migrations.pending_versions(db)
            result = JobResult("db_init", f"dry run: {len(pending)} schema step(s) to apply",
                               "dry_run", ExitCode.OK,
                               {"database": db.safe_url, "schema_version": migrations.LATEST,
                                "applied_versions": [], "pending_versions": pending,
                                "dry_run": True})
        else:
            applied = migrations.ensure_schema(db)
            message = (f"schema upgraded to version {migrations.LATEST}" if applied
                       else f"schema already at version {migrations.LATEST}")
            result = JobResult("db_init", message, "ok", ExitCode.OK,
                               {"database": db.safe_url, "schema_version": migrations.LATEST,
                                "applied_versions": applied, "dry_run": False})
        return _with_source_indexes(session, db, result) if source_indexes else result

    guarded(session, action)


def _with_source_indexes(session: Session, db: Database, result: JobResult) -> JobResult:
    from opsctl.adapters.db.source_indexes import SourceIndexes

    source = session.settings.source
    indexes = SourceIndexes(db, source.table, source.columns.model_dump())
    plans = indexes.plan() if db.read_only else indexes.create()
    listed = [{"name": p.name, "state": p.state, "statement": p.statement} for p in plans]
    made = sum(p.state in ("created", "rebuilt") for p in plans)
    wanted = sum(p.state in ("missing", "invalid") for p in plans)
    note = (f"; {wanted} source index(es) to create" if db.read_only
            else f"; {made} source index(es) created")
    return JobResult(result.summary_type, result.message + note, result.state,
                     result.exit_code, {**result.fields, "source_indexes": listed},
                     result.extra)


@render.register("db_init")
def _render(out: Console, result: JobResult) -> None:
    render.key_values(out, JobResult(
        result.summary_type, result.message, result.state, result.exit_code,
        {k: v for k, v in result.fields.items() if k != "source_indexes"}, result.extra))
    indexes: list[dict[str, Any]] = result.fields.get("source_indexes") or []
    for index in indexes:
        # Printed plain, so the statements can be copied into psql as they are.
        out.print(f"-- {index['name']}: {index['state']}", markup=False, highlight=False)
        out.print(index["statement"] + ";", markup=False, highlight=False, soft_wrap=True)
