"""``opsctl db init``."""

from __future__ import annotations

import typer

from opsctl.cli.session import Session, guarded
from opsctl.exit_codes import ExitCode
from opsctl.jobs.result import JobResult

app = typer.Typer(help="opsctl's own tables.", no_args_is_help=True)


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create or upgrade opsctl's own tables (opsctl_*). Safe to run again."""
    session = Session.of(ctx)
    dry_run = session.dry_run()

    def action() -> JobResult:
        from opsctl.adapters.db import migrations

        db = session.database(read_only=dry_run)
        if dry_run:
            pending = migrations.pending_versions(db)
            return JobResult("db_init", f"dry run: {len(pending)} schema step(s) to apply",
                             "dry_run", ExitCode.OK,
                             {"database": db.safe_url, "schema_version": migrations.LATEST,
                              "applied_versions": [], "pending_versions": pending,
                              "dry_run": True})
        applied = migrations.ensure_schema(db)
        message = (f"schema upgraded to version {migrations.LATEST}" if applied
                   else f"schema already at version {migrations.LATEST}")
        return JobResult("db_init", message, "ok", ExitCode.OK,
                         {"database": db.safe_url, "schema_version": migrations.LATEST,
                          "applied_versions": applied, "dry_run": False})

    guarded(session, action)
