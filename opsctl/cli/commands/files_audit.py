"""``opsctl files audit``: the storage and the table held against each other.

Registered on the ``files`` group by :mod:`opsctl.cli.commands.files`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from opsctl.cli import render
from opsctl.cli.guard_options import Force, MaxDelete, deletion_guard
from opsctl.cli.session import Session, report_error
from opsctl.domain.durations import parse_duration
from opsctl.domain.units import human_bytes, human_count
from opsctl.errors import OpsctlError, UsageError
from opsctl.jobs import files_audit
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console


def audit(
    ctx: typer.Context,
    min_age: Annotated[str, typer.Option(
        "--min-age", metavar="DUR",
        help="Only files older than this can be orphans (a file being written is young).")
    ] = "24h",
    delete_orphans: Annotated[bool, typer.Option(
        "--delete-orphans", help="Delete the orphans (job files.audit: lock, run history, "
        "deletion guard).")] = False,
    max_delete: MaxDelete = None,
    force: Force = False,
    report: Annotated[Path | None, typer.Option(
        "--report", metavar="PATH", help="Write one JSON line per finding to PATH.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Find and count; delete nothing.")] = False,
) -> None:
    """Find stored files no row references (orphans) and completed exports whose file is
    gone (missing), in one pass over both. Exit 0 clean, 1 findings."""
    session = Session.of(ctx)
    try:
        age = _min_age(min_age)
    except OpsctlError as exc:
        report_error(session.env, exc, job=files_audit.JOB)
        return
    dry = session.dry_run(dry_run)
    read_only = dry or not delete_orphans

    def work(job_ctx: JobContext) -> JobResult:
        from opsctl.adapters.db.file_references import FileReferences
        from opsctl.adapters.findings_report import JsonLinesReport
        from opsctl.cli.commands.files import file_store

        settings = session.settings
        store = file_store(session)
        db = session.database(read_only=read_only)
        guard = deletion_guard(db, settings.files.guard_limits(max_delete), force,
                               files_audit.BASELINE_FIELDS)
        # The report is written as findings arrive; a dry run only names it (below).
        sink = JsonLinesReport(report) if report is not None and not dry else None
        ports = files_audit.AuditPorts(_listing(session, store),
                                       FileReferences(db, settings.source), store, sink,
                                       guard)
        params = files_audit.AuditParams(age, delete_orphans, dry_run=dry)
        try:
            result = files_audit.run(job_ctx, ports, params)
        finally:
            if sink is not None:
                sink.discard()
        if report is None:
            return result
        return session.write_files(result, [report], lambda: None, dry_run=dry)

    session.run_job(files_audit.JOB, files_audit.SUMMARY_TYPE, work,
                    mutating=delete_orphans, cooperative=True, dry_run=read_only)


def _min_age(text: str) -> timedelta:
    if text.strip() in ("0", "0s"):
        return timedelta(0)
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--min-age: {exc}") from None


def _listing(session: Session, store: object) -> files_audit.StorageListing:
    from opsctl.adapters.storage.listing import LocalListing, S3Listing
    from opsctl.adapters.storage.local import LocalFileStore
    from opsctl.adapters.storage.s3 import S3FileStore

    if isinstance(store, LocalFileStore):
        return LocalListing(store.root)
    assert isinstance(store, S3FileStore)
    return S3Listing(store.client, store.bucket, store.prefix)


@render.register(files_audit.SUMMARY_TYPE)
def _render_audit(out: Console, result: JobResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    f = result.fields
    render.headline(out, result)
    rows = [("stored files", human_count(f["stored_files"])),
            ("referenced files", human_count(f["referenced_files"])),
            ("orphans", f"{human_count(f['orphan_count'])} "
                        f"({human_bytes(f['orphan_bytes'])})"),
            ("missing", human_count(f["missing_count"]))]
    if "forced" in f:
        would = "would be " if f["dry_run"] else ""
        rows.append((f"orphans {would}deleted", human_count(f["deleted_orphans"])))
    out.print(render.field_table(rows))
    for kind in ("orphans", "missing"):
        examples = f["examples"][kind]
        if examples:
            listing = Table(title=f"{kind} (first {len(examples)})", title_justify="left")
            listing.add_column("file_path")
            for item in examples:
                listing.add_row(escape(item["file_path"]))
            out.print(listing)
