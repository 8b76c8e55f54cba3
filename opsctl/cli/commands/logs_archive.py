"""``opsctl logs verify`` and ``opsctl logs restore``: the way back from ``logs cleanup``.

Registered on the ``logs`` group by :mod:`opsctl.cli.commands.logs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from opsctl.cli import render
from opsctl.cli.session import Session, report_error
from opsctl.domain.archive_names import ArchiveLocation
from opsctl.domain.units import human_bytes, human_count, human_ms
from opsctl.domain.windows import parse_timestamp
from opsctl.errors import ConfigError, OpsctlError, UsageError
from opsctl.jobs import logs_restore, logs_verify
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.ports import ArchiveObjects, RestoreWindow

ArchiveUri = Annotated[str | None, typer.Option(
    "--archive-uri", metavar="URI",
    help="s3://bucket/prefix or file:///absolute/dir, or any prefix or directory below it. "
    "[default: logs.archive_uri]")]


def verify(ctx: typer.Context, archive_uri: ArchiveUri = None) -> None:
    """Read every archive object under the URI whole and hold it against its name and
    the archive catalog. Read-only. Exit 0 all good, 1 only unrecorded objects, 2 any bad
    or missing object, 3 archive unreachable."""
    session = Session.of(ctx)
    try:
        location = archive_location(session, archive_uri)
    except OpsctlError as exc:
        report_error(session.env, exc, job=logs_verify.JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.archive_catalog import DbArchiveCatalog

        catalog = DbArchiveCatalog(session.database(read_only=True))
        ports = logs_verify.VerifyPorts(archive_objects(session, location), catalog)
        params = logs_verify.VerifyParams(id_column=session.settings.source.columns.id)
        return logs_verify.run(job_ctx, ports, params)

    session.run_job(logs_verify.JOB, logs_verify.SUMMARY_TYPE, work, dry_run=True)


def restore(
    ctx: typer.Context,
    archive_uri: ArchiveUri = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="TS",
        help="Only rows created at or after TS (ISO 8601, no zone means UTC).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="TS", help="Only rows created before TS (excluded).")] = None,
    into: Annotated[str | None, typer.Option(
        "--into", metavar="TABLE",
        help="An existing table with the source table's columns. [default: source.table]"
    )] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Read and verify every object, count what would be restored; "
        "write nothing.")] = False,
) -> None:
    """Put archived rows back, every column as it was. Rows whose id is already in the
    table are left alone, so a rerun restores nothing twice. An object that fails
    verification is skipped (exit 1)."""
    session = Session.of(ctx)
    try:
        location = archive_location(session, archive_uri)
        window = _window(since, until)
        if into is not None:
            _check_table_name(into)
    except OpsctlError as exc:
        report_error(session.env, exc, job=logs_restore.JOB)
        return

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.archive_catalog import DbArchiveCatalog
        from opsctl.adapters.db.restore import SqlRestoreTarget

        source = session.settings.source
        db = session.database(read_only=job_ctx.dry_run)
        target = SqlRestoreTarget(db, into or source.table, source.table,
                                  source.columns.model_dump(),
                                  config_key=None if into else "source.table")
        ports = logs_restore.RestorePorts(archive_objects(session, location),
                                          DbArchiveCatalog(db), target)
        params = logs_restore.RestoreParams(source.table, window, source.columns.id)
        try:
            return logs_restore.run(job_ctx, ports, params)
        finally:
            target.close()

    session.run_job(logs_restore.JOB, logs_restore.SUMMARY_TYPE, work, mutating=True,
                    cooperative=True, dry_run=dry_run)


def _window(since: str | None, until: str | None) -> RestoreWindow:
    from opsctl.ports import RestoreWindow

    moments = {}
    for flag, text in (("--since", since), ("--until", until)):
        try:
            moments[flag] = parse_timestamp(text) if text is not None else None
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
    start, end = moments["--since"], moments["--until"]
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}")
    return RestoreWindow(start, end)


def _check_table_name(name: str) -> None:
    from opsctl.settings.fields import table_name

    try:
        table_name(name)
    except ValueError as exc:
        raise UsageError(f"--into {name!r}: {exc}") from None


def archive_location(session: Session, archive_uri: str | None) -> ArchiveLocation:
    """--archive-uri (64 when malformed) over ``[logs] archive_uri`` (78)."""
    if archive_uri is not None:
        try:
            return ArchiveLocation.parse(archive_uri)
        except ValueError as exc:
            raise UsageError(f"--archive-uri: {exc}") from None
    configured = session.settings.logs.archive_uri
    if not configured:
        raise UsageError("no archive to read: pass --archive-uri or set [logs] archive_uri")
    try:
        return ArchiveLocation.parse(configured)
    except ValueError as exc:
        raise ConfigError(f"logs.archive_uri: {exc}", key="logs.archive_uri") from None


def archive_objects(session: Session, location: ArchiveLocation) -> ArchiveObjects:
    if location.scheme == "file":
        from pathlib import Path

        from opsctl.adapters.archive.reading import LocalArchiveObjects

        return LocalArchiveObjects(Path(location.path))
    from opsctl.adapters.archive.reading import S3ArchiveObjects
    from opsctl.adapters.s3_client import make_s3_client

    client = make_s3_client(session.settings.s3, session.runtime.env)
    return S3ArchiveObjects(client, location.bucket, location.path)


@render.register(logs_verify.SUMMARY_TYPE)
def _render_verify(out: Console, result: JobResult) -> None:

    f = result.fields
    render.headline(out, result)
    out.print(render.field_table([
        ("objects", human_count(f["objects"])),
        ("rows", human_count(f["rows"])),
        ("read", human_bytes(f["bytes"])),
        ("ok", human_count(f["ok_objects"])),
        ("bad", human_count(f["bad_objects"])),
        ("missing", human_count(f["missing_objects"])),
        ("unrecorded", human_count(f["unrecorded_objects"])),
        ("took", human_ms(f["duration_ms"])),
    ]))


@render.register(logs_restore.SUMMARY_TYPE)
def _render_restore(out: Console, result: JobResult) -> None:
    from rich.markup import escape

    f = result.fields
    render.headline(out, result)
    would = "would be " if f["dry_run"] else ""
    out.print(render.field_table([
        ("objects read", human_count(f["objects"])),
        ("objects skipped (no matching rows)", human_count(f["objects_skipped"])),
        ("objects failed", human_count(f["objects_failed"])),
        ("rows read", human_count(f["rows_read"])),
        (f"rows {would}restored", human_count(f["rows_restored"])),
        ("rows already there", human_count(f["rows_present"])),
        ("into", escape(f["into"])),
        ("took", human_ms(f["duration_ms"])),
    ]))
