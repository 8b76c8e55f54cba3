"""``opsctl files cleanup``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from opsctl.cli import render
from opsctl.cli.guard_options import Force, MaxDelete, deletion_guard
from opsctl.cli.session import Session
from opsctl.domain.units import human_bytes, human_count
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.ports import FileStore

app = typer.Typer(help="Delete expired export files.", no_args_is_help=True)

JOB = "files.cleanup"
SUMMARY_TYPE = "export_file_cleanup_complete"


@app.command("cleanup")
def cleanup(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be deleted; change nothing (also OPSCTL_DRY_RUN=1)."
    )] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, metavar="N",
        help="Handle at most N files in this run (default: files.limit, else no limit)."
    )] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, max=10_000, metavar="N",
        help="Rows read and files deleted per batch (default: files.batch_size, 500)."
    )] = None,
    max_delete: MaxDelete = None,
    force: Force = False,
) -> None:
    """Delete the files of exports whose expires_at has passed and mark their rows expired.

    A file already gone counts as missing. A refused file is reported and exits 1.

    One bad file never stops the run; files outside the storage root are never touched.
    """
    session = Session.of(ctx)

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.expired_exports import ExpiredExportsRepository
        from opsctl.jobs import files_cleanup

        settings = session.settings
        params = files_cleanup.CleanupParams(
            batch_size=batch_size or settings.files.batch_size,
            limit=limit or settings.files.limit,
            batch_pause_ms=settings.files.batch_pause_ms,
        )
        store = file_store(session)
        db = session.database(read_only=job_ctx.dry_run)
        guard = deletion_guard(db, settings.files.guard_limits(max_delete), force,
                               files_cleanup.BASELINE_FIELDS)
        with ExpiredExportsRepository(db, settings.source) as exports:
            return files_cleanup.run(
                job_ctx, files_cleanup.CleanupPorts(exports, store, guard), params)

    session.run_job(JOB, SUMMARY_TYPE, work, mutating=True, cooperative=True, dry_run=dry_run)


def file_store(session: Session) -> FileStore:
    settings, environ = session.settings, session.runtime.env
    if settings.storage.backend == "s3":
        from opsctl.adapters.storage.s3 import S3FileStore

        return S3FileStore.from_settings(settings, environ)
    from opsctl.adapters.storage.local import LocalFileStore
    from opsctl.settings import storage_root

    return LocalFileStore(storage_root(settings, environ))


@render.register(SUMMARY_TYPE)
def _render_summary(out: Console, result: JobResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    fields = result.fields
    table = Table(title=result.message, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", justify="right")
    dry = bool(fields.get("dry_run"))
    table.add_row("state", render.styled_state(result.state))
    table.add_row("candidates", human_count(fields["candidates"]))
    table.add_row("would delete" if dry else "deleted", human_count(fields["deleted_count"]))
    table.add_row("missing", human_count(fields["missing_count"]))
    table.add_row("failed", human_count(fields["failed_count"]))
    table.add_row("bytes freed" + (" (would be)" if dry else ""),
                  human_bytes(fields["bytes_freed"]))
    if "error" in fields:
        table.add_row("stopped by", f"[red]{escape(fields['error']['message'])}[/]")
    out.print(table)
    sample = result.extra.get("sample") or []
    if dry and sample:
        files = Table(title=f"first {len(sample)} files", title_justify="left")
        files.add_column("file_path")
        files.add_column("size", justify="right")
        files.add_column("would be")
        for entry in sample:
            files.add_row(escape(entry["file_path"]), human_bytes(entry["size"]), entry["state"])
        out.print(files)


# The audit lives in its own module; it joins this group here.
from opsctl.cli.commands import files_audit  # noqa: E402

app.command("audit")(files_audit.audit)
