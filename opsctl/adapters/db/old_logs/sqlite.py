"""SQLite's side of the cleanup: one scan that surveys the eligible rows, and the archived
deletes (its rows have no version, so what a delete removes is re-encoded into archive
lines and compared with what was archived)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, literal, select

from opsctl.adapters.db.instants import older_than
from opsctl.adapters.db.log_lines import encode_row, lines_version
from opsctl.adapters.db.old_logs.statements import IDS_PER_STATEMENT
from opsctl.adapters.db.sqlite_lines import SqliteLines, delete_range
from opsctl.ports import LogBatch


def survey(conn: Connection, table: Table, cutoff: datetime) -> tuple[int, int | None, bool]:
    """The eligible rows, the highest eligible id, and whether any row below the cutoff
    may be a poison row.

    Two passes over the ``created_at`` index instead of three: the count and the bound in
    one, then a plain count of every value that sorts before the cutoff, which needs no
    function per row. Only when the two counts differ can a poison row be there (or an
    instant with a zone that is in fact newer), and only then is it looked for."""
    c = table.c
    eligible, upper = conn.execute(
        select(func.count(), func.max(c.id)).where(older_than(c.created_at, cutoff, sqlite=True))
    ).one()
    below = conn.execute(select(func.count()).where(
        c.created_at < literal(cutoff, c.created_at.type))).scalar_one()
    return int(eligible), None if upper is None else int(upper), int(below) != int(eligible)


def delete_archived(conn: Connection, lines: SqliteLines, batch: LogBatch,
                    cutoff: datetime) -> tuple[int, str]:
    """Delete the batch's range; how many rows went and the version of their lines.

    The caller's transaction has written already (SQLite's write lock is held), so the
    lines compared are those of the rows deleted."""
    rows, payload = delete_range(conn, lines, batch.first_id, batch.last_id, cutoff)
    return rows, lines_version(payload)


def delete_ids(conn: Connection, full: Table, ids: Sequence[int],
               cutoff: datetime) -> dict[int, dict[str, Any]]:
    """Delete these rows where older than the cutoff; their content as archived lines."""
    found: dict[int, dict[str, Any]] = {}
    c = full.c
    names = [column.name for column in full.columns]
    id_index = names.index(c.id.name)
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = list(ids[start:start + IDS_PER_STATEMENT])
        statement = (delete(full)
                     .where(c.id.in_(chunk), older_than(c.created_at, cutoff, sqlite=True))
                     .returning(*full.columns))
        for row in conn.execute(statement):
            found[int(row[id_index])] = json.loads(encode_row(names, tuple(row)))
    return found
