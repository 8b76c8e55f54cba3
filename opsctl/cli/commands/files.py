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
    from rich.console import Console, RenderableType

    from opsctl.ports import FileStore

app = typer.Typer(help="Delete expired export files.", no_args_is_help=True)

JOB = "files.cleanup"
SUMMARY_TYPE = "export_file_cleanup_complete"


@app.command("cleanup", epilog="\b\nExamples:\n  opsctl files cleanup --dry-run -o text\n  opsctl files cleanup\n  opsctl files cleanup --limit 1000 --batch-size 500")
def cleanup(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show what would be deleted; change nothing (also OPSCTL_DRY_RUN=1)."
    )] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, metavar="N",
        help="Handle at most N files in this run. [default: files.limit; no limit when unset]"
    )] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", min=1, max=10_000, metavar="N",
        help="Rows read and files deleted per batch. [default: files.batch_size, 2000]"
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
    from rich.table import Table
    from rich.text import Text

    fields = result.fields
    render.headline(out, result)
    table = Table(show_header=False, box=None, padding=(0, 2), pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", justify="right", overflow="fold")
    dry = bool(fields.get("dry_run"))
    table.add_row("state", render.state_text(result.state))
    table.add_row("candidates", human_count(fields["candidates"]))
    table.add_row("would delete" if dry else "deleted", human_count(fields["deleted_count"]))
    table.add_row("missing", human_count(fields["missing_count"]))
    table.add_row("failed", human_count(fields["failed_count"]))
    table.add_row("bytes freed" + (" (would be)" if dry else ""),
                  human_bytes(fields["bytes_freed"]))
    if "error" in fields:
        table.add_row("stopped by", Text(str(fields["error"]["message"]), style="red"))
    out.print(table)
    sample = result.extra.get("sample") or []
    if dry and sample:
        out.print(Text(f"first {len(sample)} files", style="bold"))
        rows: list[list[RenderableType]] = [
            [Text(str(entry["file_path"])), human_bytes(entry["size"]), Text(str(entry["state"]))]
            for entry in sample
        ]
        columns = [render.Column("file_path", flexible=True),
                   render.Column("size", right=True), render.Column("would be")]
        out.print(render.fitted_table(out, columns, rows))


# The audit lives in its own module; it joins this group here.
from opsctl.cli.commands import files_audit  # noqa: E402

app.command("audit", epilog="\b\nExamples:\n  opsctl files audit -o text\n  opsctl files audit --min-age 7d --report /tmp/audit.jsonl\n  opsctl files audit --delete-orphans --dry-run")(files_audit.audit)
