"""``logs.cleanup`` after ``kill -9``: the in-flight marker, and settling the objects a
killed run wrote but did not delete.

Before each object is published, a marker names it, with every other object published and
not yet settled (two at most: PostgreSQL archives two batches at once). A run that dies
between publishing an object and committing its delete leaves the marker behind; the next
run first settles each object it names under the same checks as a batch: it deletes the
object's rows only where they still equal the archived lines and are older than this
run's cutoff, and catalogues the object in that transaction. An object already
catalogued (its delete committed) or never created needs nothing. If any of its rows
changed (or became newer) since, the object is removed instead (its delete never
committed, so its rows are all still in the table) and they are archived again in their
current version. The marker goes only once every object it names is settled.

A marker naming one object keeps the shape earlier versions wrote and read
(``{"object": ..., "first_id": ..., ...}``); several go in a list under ``objects``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
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


def marker(objects: Sequence[tuple[str, LogBatch]], cutoff: datetime, run_id: str) -> bytes:
    """The in-flight marker naming the objects published (or about to be) and not yet
    settled, oldest first."""
    entries = [{"object": name, "first_id": batch.first_id, "last_id": batch.last_id,
                "rows": batch.rows} for name, batch in objects]
    noted: dict[str, Any] = entries[0] if len(entries) == 1 else {"objects": entries}
    return json.dumps({**noted, "cutoff": rfc3339(cutoff), "run_id": run_id}).encode()


def recover(ctx: JobContext, logs: OldLogs, archive: LogArchive, cutoff: datetime,
            catalog: Catalog) -> int:
    """Settle the objects a killed run left between their archive and their delete; the
    rows that deleted (0 when there was nothing to settle or the objects were discarded)."""
    raw = archive.read_marker()
    if raw is None:
        return 0
    where = f"the in-flight marker under {archive.uri}"
    try:
        noted = json.loads(raw)
        entries = noted.get("objects", [noted])
        named = [(str(entry["object"]), int(entry["first_id"]), int(entry["last_id"]),
                  int(entry["rows"])) for entry in entries]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArchiveUnavailable(f"{where} is not a marker opsctl wrote: {exc}") from exc
    deleted = sum(_settle(ctx, logs, archive, cutoff, catalog, *entry) for entry in named)
    archive.remove_marker()
    return deleted


def _settle(ctx: JobContext, logs: OldLogs, archive: LogArchive, cutoff: datetime,
            catalog: Catalog, name: str, first: int, last: int, rows: int) -> int:
    """Settle one object the marker names; the rows that deleted."""
    found = archive.read(name)
    if found is None or logs.is_catalogued(catalog.uri, catalog.key_of(name)):
        return 0  # never written, or its delete committed: nothing to do
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
        return 0
    ctx.emitter.emit(
        RECOVERED_EVENT,
        f"finished the batch {first}-{last} an earlier run archived but did not delete",
        uri=stored.uri, rows=rows, deleted_count=settled.deleted, first_id=first,
        last_id=last,
    )
    return settled.deleted


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
