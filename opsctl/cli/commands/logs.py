"""``opsctl logs stats`` and ``opsctl logs cleanup``."""

from __future__ import annotations

from contextlib import ExitStack, closing
from typing import TYPE_CHECKING, Annotated

import typer

from opsctl.cli import render
from opsctl.cli.guard_options import Force, MaxDelete, deletion_guard
from opsctl.cli.session import Session, report_error
from opsctl.domain.archive_names import ArchiveLocation, marker_name
from opsctl.domain.units import human_count, human_ms
from opsctl.errors import ConfigError, OpsctlError, UsageError
from opsctl.jobs import logs_cleanup, logs_stats
from opsctl.jobs.context import JobContext
from opsctl.jobs.logs_cleanup import LogCleanupParams, LogCleanupPorts
from opsctl.jobs.logs_stats import LogStatsParams
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.ports import LogArchive

app = typer.Typer(help="Statistics and retention of the export log table.", no_args_is_help=True)

RetentionDays = Annotated[int | None, typer.Option(
    "--retention-days", metavar="N", min=0, max=36500,
    help="Rows with created_at older than N days are eligible. "
    "[default: logs.retention_days, 30]")]


@app.command("stats", epilog="\b\nExamples:\n  opsctl logs stats\n  opsctl logs stats --retention-days 90 -o json")
def stats(ctx: typer.Context, retention_days: RetentionDays = None) -> None:
    """Rows in the table, rows eligible for cleanup, oldest and newest created_at.
    Read-only: no lock, no run record."""
    session = Session.of(ctx)

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.old_logs import OldLogsRepository

        settings = session.settings
        days = settings.logs.retention_days if retention_days is None else retention_days
        repository = OldLogsRepository(session.database(read_only=True), settings.source)
        with closing(repository):
            return logs_stats.run(job_ctx, repository, LogStatsParams(days))

    # A read-only job goes through the runner the way a dry run does: no schema, no lock,
    # no run history, READ ONLY transactions.
    session.run_job(logs_stats.JOB, logs_stats.SUMMARY_TYPE, work, dry_run=True)


@app.command("cleanup", epilog="\b\nExamples:\n  opsctl logs cleanup --dry-run -o text\n  opsctl logs cleanup --retention-days 90\n  opsctl logs cleanup --archive-uri s3://bucket/export-logs")
def cleanup(
    ctx: typer.Context,
    retention_days: RetentionDays = None,
    archive: Annotated[bool | None, typer.Option(
        "--archive/--no-archive",
        help="Write each batch as gzip JSON lines to the archive URI, and verify it, before "
        "deleting it. [default: logs.archive; on when --archive-uri is given]")] = None,
    archive_uri: Annotated[str | None, typer.Option(
        "--archive-uri", metavar="URI",
        help="s3://bucket/prefix or file:///absolute/dir. [default: logs.archive_uri]")] = None,
    batch_size: Annotated[int | None, typer.Option(
        "--batch-size", metavar="N", min=1, max=100_000,
        help="Rows per delete transaction and per archive object. "
        "[default: logs.batch_size, 5000]")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run",
        help="Count what would be archived and deleted; write nothing anywhere.")] = False,
    max_delete: MaxDelete = None,
    force: Force = False,
) -> None:
    """Delete rows older than the retention in batches by id, archiving each batch first
    with --archive. Safe to kill: a rerun finishes an interrupted batch."""
    session = Session.of(ctx)
    try:
        params, location = _cleanup_params(session, retention_days, archive, archive_uri,
                                           batch_size)
    except OpsctlError as exc:
        report_error(session.env, exc, job=logs_cleanup.JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.old_logs import OldLogsRepository

        settings = session.settings
        repository = OldLogsRepository(session.database(read_only=job_ctx.dry_run),
                                       settings.source)
        config = settings.logs
        guard = deletion_guard(repository.db, config.guard_limits(
            max_delete, config.max_delete_fraction), force, ("deleted_count",))
        with closing(repository), ExitStack() as stack:
            archive_port = None
            if location:
                archive_port = _archive(session, location,
                                        marker_name(repository.source_identity()))
            partitions = held = None
            if not repository.db.is_sqlite:  # also to report what earlier runs detached
                from opsctl.adapters.db.partitions import PartitionsRepository

                partitions = stack.enter_context(closing(
                    PartitionsRepository(repository.db, settings.source)))
                if archive_port is not None:
                    held = stack.enter_context(closing(repository.held()))
            ports = LogCleanupPorts(repository, archive_port, guard, repository.count_rows,
                                    partitions, held)
            return logs_cleanup.run(job_ctx, ports, params)

    session.run_job(logs_cleanup.JOB, logs_cleanup.SUMMARY_TYPE, work, mutating=True,
                    cooperative=True, dry_run=dry_run)


def _cleanup_params(
    session: Session, retention_days: int | None, archive: bool | None,
    archive_uri: str | None, batch_size: int | None,
) -> tuple[LogCleanupParams, ArchiveLocation | None]:
    """Flags over config. A URI on the command line means "archive there" unless
    --no-archive says otherwise: deleting without the archive someone asked for is the
    costly mistake."""
    location = None
    if archive_uri is not None:
        try:
            location = ArchiveLocation.parse(archive_uri)
        except ValueError as exc:
            raise UsageError(f"--archive-uri: {exc}") from None
    settings = session.settings
    config = settings.logs
    wanted = archive if archive is not None else (config.archive or location is not None)
    if wanted and location is None:
        if not config.archive_uri:
            raise UsageError("--archive needs --archive-uri or [logs] archive_uri")
        try:
            location = ArchiveLocation.parse(config.archive_uri)
        except ValueError as exc:
            raise ConfigError(f"logs.archive_uri: {exc}", key="logs.archive_uri") from None
    params = LogCleanupParams(
        retention_days=config.retention_days if retention_days is None else retention_days,
        batch_size=config.batch_size if batch_size is None else batch_size,
        archive=wanted,
        id_column=settings.source.columns.id,
        created_at_column=settings.source.columns.created_at,
        catalog_uri=location.uri if wanted and location else "",
        catalog_prefix=settings.source.table,
        batch_pause_ms=config.batch_pause_ms,
        drop_partitions=config.drop_partitions,
    )
    table_location = location.for_table(settings.source.table) if wanted and location else None
    return params, table_location


def _archive(session: Session, location: ArchiveLocation, marker: str) -> LogArchive:
    level = session.settings.logs.gzip_level
    if location.scheme == "file":
        from pathlib import Path

        from opsctl.adapters.archive.local import LocalArchive

        return LocalArchive(Path(location.path), gzip_level=level, marker=marker)
    from opsctl.adapters.archive.s3 import S3Archive
    from opsctl.adapters.s3_client import make_s3_client

    client = make_s3_client(session.settings.s3, session.runtime.env)
    return S3Archive(client, location.bucket, location.path, gzip_level=level, marker=marker)


@render.register(logs_stats.SUMMARY_TYPE)
def _render_stats(out: Console, result: JobResult) -> None:
    from rich.table import Table
    from rich.text import Text

    f = result.fields
    render.headline(out, result)
    table = Table(show_header=False, box=None, padding=(0, 2), pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_row("rows", human_count(f["total_rows"]))
    table.add_row(f"older than {f['retention_days']} days", human_count(f["eligible_for_cleanup"]))
    table.add_row("cutoff", Text(str(f["cutoff"])))
    table.add_row("oldest created_at", Text(str(f["oldest_created_at"] or "—")))
    table.add_row("newest created_at", Text(str(f["newest_created_at"] or "—")))
    out.print(table)


@render.register(logs_cleanup.SUMMARY_TYPE, notes=("export_log_archive_written",))
def _render_cleanup(out: Console, result: JobResult) -> None:
    from rich.text import Text

    f = result.fields
    render.headline(out, result)
    would = "would be " if f["dry_run"] else ""
    rows: list[tuple[str, object]] = [
        ("eligible", human_count(f["eligible_count"])),
        (f"{would}archived", human_count(f["archived_count"])),
        (f"{would}deleted", human_count(f["deleted_count"])),
        ("left in place", human_count(f["skipped_count"])),
        (f"{would}written objects", human_count(f["archive_objects"])),
    ]
    if f["recovered_count"]:
        rows.append(("finished from a killed run", human_count(f["recovered_count"])))
    if f.get("partitions"):
        rows.append((f"partitions {would}dropped", Text(", ".join(f["partitions"]))))
    rows += [("archive", Text(str(f["archive_uri"] or "none"))),
             ("took", human_ms(f["duration_ms"]))]
    out.print(render.field_table(rows))


# The way back (verify, restore) lives in its own module; it joins this group here.
from opsctl.cli.commands import logs_archive  # noqa: E402

app.command("verify", epilog="\b\nExamples:\n  opsctl logs verify\n  opsctl logs verify --archive-uri s3://bucket/export-logs")(logs_archive.verify)
app.command("restore", epilog="\b\nExamples:\n  opsctl logs restore --archive-uri s3://bucket/export-logs --since 2026-10-01 --dry-run\n  opsctl logs restore --archive-uri file:///srv/archive --into export_logs_restored")(logs_archive.restore)
