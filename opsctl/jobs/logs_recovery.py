"""``logs.cleanup`` after ``kill -9``: the in-flight marker, and settling the one object a
killed run wrote but did not delete.

Before each object is published, a marker names it. A run that dies between publishing an
object and committing its delete leaves that marker behind; the next run first settles
that object under the same checks as a batch: it deletes the object's rows only where they
still equal the archived lines and are older than this run's cutoff, and catalogues the
object in that transaction. If any of its rows changed (or became newer) since, the object
is removed instead (its delete never committed, so its rows are all still in the table)
and they are archived again in their current version.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsctl.errors import ArchiveUnavailable
from opsctl.events import rfc3339
from opsctl.jobs.context import JobContext
from opsctl.ports import ArchivedObject, CatalogRecord, LogArchive, LogBatch, OldLogs

RECOVERED_EVENT = "export_log_archive_recovered"
DISCARDED_EVENT = "export_log_archive_discarded"


@dataclass(frozen=True)
class Catalog:
    """How this run names and catalogues objects, for the one it settles."""

    uri: str  # the archive root as configured
    id_column: str  # the id's key in archived lines
    created_at_column: str
    key_of: Callable[[str], str]  # an object's catalog key from its name
    # The catalog row of an object: what is stored, first and last id, rows, and the
    # oldest and newest created_at it holds.
    record_of: Callable[[ArchivedObject, int, int, int, datetime | None, datetime | None],
                        CatalogRecord]


def marker(name: str, batch: LogBatch, cutoff: datetime, run_id: str) -> bytes:
    """The in-flight marker naming the object about to be published."""
    return json.dumps({
        "object": name, "first_id": batch.first_id, "last_id": batch.last_id,
        "rows": batch.rows, "cutoff": rfc3339(cutoff), "run_id": run_id,
    }).encode()


def recover(ctx: JobContext, logs: OldLogs, archive: LogArchive, cutoff: datetime,
            catalog: Catalog) -> int:
    """Settle the object a killed run left between its archive and its delete; the rows
    that deleted (0 when there was nothing to settle or the object was discarded)."""
    raw = archive.read_marker()
    if raw is None:
        return 0
    where = f"the in-flight marker under {archive.uri}"
    try:
        noted = json.loads(raw)
        name, first, last, rows = (str(noted["object"]), int(noted["first_id"]),
                                   int(noted["last_id"]), int(noted["rows"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveUnavailable(f"{where} is not a marker opsctl wrote: {exc}") from exc
    found = archive.read(name)
    if found is None or logs.is_catalogued(catalog.uri, catalog.key_of(name)):
        archive.remove_marker()  # never written, or its delete committed: nothing to do
        return 0
    content, stored = found
    archived = _archived_rows(content, catalog.id_column, stored.uri)
    ids = sorted(archived)
    if len(archived) != rows or ids[0] != first or ids[-1] != last:
        raise ArchiveUnavailable(
            f"{stored.uri} does not hold the {rows} rows {first}-{last} its marker names; "
            "nothing deleted, inspect it"
        )
    stamps = _stamps(archived.values(), catalog.created_at_column)
    record = catalog.record_of(stored, first, last, rows, min(stamps, default=None),
                               max(stamps, default=None))
    settled = logs.settle_archived(archived, cutoff, record)
    deleted = 0
    if settled.stale:
        # Its delete never committed (it is not catalogued), so every row it holds that
        # still exists is in the table: archived again, in its current version.
        archive.remove(name)
        ctx.emitter.emit(
            DISCARDED_EVENT,
            f"an earlier run's object {stored.uri} was removed: {len(settled.stale)} of its "
            "rows changed or became newer than the cutoff since it was written; its rows "
            "stay in the table and are archived again in their current version",
            level="warning", uri=stored.uri, rows=rows, first_id=first, last_id=last,
            changed_ids=list(settled.stale)[:20],
        )
    else:
        deleted = settled.deleted
        ctx.emitter.emit(
            RECOVERED_EVENT,
            f"finished the batch {first}-{last} an earlier run archived but did not delete",
            uri=stored.uri, rows=rows, deleted_count=settled.deleted, first_id=first,
            last_id=last,
        )
    archive.remove_marker()
    return deleted


def _archived_rows(content: bytes, id_column: str, uri: str) -> dict[int, dict[str, Any]]:
    try:
        rows = [json.loads(line) for line in content.splitlines() if line]
        return {int(row[id_column]): row for row in rows}
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveUnavailable(
            f"{uri}: cannot read the {id_column!r} of its rows ({exc}); nothing deleted"
        ) from exc


def _stamps(rows: Iterable[dict[str, Any]], column: str) -> list[datetime]:
    stamps = []
    for row in rows:
        with contextlib.suppress(TypeError, ValueError):
            stamps.append(datetime.fromisoformat(row.get(column)))  # type: ignore[arg-type]
    return stamps
