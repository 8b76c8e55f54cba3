"""SQLite's side of the cleanup: one scan that surveys the eligible rows, and the archived
deletes.

SQLite's rows have no version, so an archived batch's delete must otherwise re-encode
what it removes and compare it with the lines archived; at a million rows that second
encoding cost as much as the first. It is needed only when another connection may have
changed the rows in between. SQLite has one writer at a time, and ``PRAGMA data_version``
on a connection changes exactly when *another* connection has committed (this
connection's own commits leave it alone). So the run connection notes it before each
batch's read begins (``read_version``), and the delete, inside its write transaction,
reads it again: unchanged, nothing but this run's own deletes of earlier, disjoint ranges
and its catalogue rows was committed since the read, no other writer can commit before
the delete does, and the range's rows are the rows archived. Changed (the application
wrote anything, anywhere, or another process checkpointed), the lines are compared as
before. A false alarm costs only the comparison."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, literal, select

from opsctl.adapters.db.instants import older_than
from opsctl.adapters.db.log_lines import encode_row
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


def read_version(conn: Connection) -> str:
    """The version to give the batch about to be read: ``conn``'s ``data_version`` now.

    Taken outside any transaction, so the value is the latest, and before the read's own
    snapshot begins (on another connection), so a commit between the two shows. Inside a
    transaction the value would be that transaction's: no version then (always compared)."""
    if getattr(conn.connection.driver_connection, "in_transaction", True):
        return ""
    return _version(conn)


def delete_archived(conn: Connection, lines: SqliteLines, batch: LogBatch,
                    cutoff: datetime) -> bool:
    """Delete the batch's range; True when the rows that went are exactly the rows
    archived (the caller rolls back otherwise).

    The caller's transaction has written already: SQLite's write lock is held, so the
    value read here is the latest and stays so until the caller commits, and the lines
    compared, when they must be, are those of the rows deleted."""
    if batch.version and batch.version == _version(conn):
        c = lines.full.c
        in_range = delete(lines.full).where(c.id >= batch.first_id, c.id <= batch.last_id,
                                            older_than(c.created_at, cutoff, sqlite=True))
        return int(conn.execute(in_range).rowcount or 0) == batch.rows
    rows, payload = delete_range(conn, lines, batch.first_id, batch.last_id, cutoff)
    return rows == batch.rows and payload == batch.payload


def _version(conn: Connection) -> str:
    return f"data_version {conn.exec_driver_sql('PRAGMA data_version').scalar_one()}"


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
