"""Archive batches read several at once on PostgreSQL, handed out in id order.

Encoding rows as JSON is the server's work and the slowest part of an archive run: one
reader keeps one server core busy (as ``psql``'s ``COPY`` does) while the client waits.
Reading ``READERS`` batches at once, each on a connection of its own, keeps as many cores
busy, and the caller compresses and writes one batch while the next ones are read.

The batches are cut before anything is read (every ``size`` eligible rows in id order,
one index scan of the ids), and each read stays inside its own id range, so two reads in
flight can never hand out the same row, whatever the application changes meanwhile: a
row added to a range is read with it (or, past ``size``, left for the next run), a row
removed is simply not there. The cuts are also where a single reader would have cut, so
the object names do not depend on timing.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import Connection, Table

from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.log_lines import BatchReader
from opsctl.ports import LogBatch

# Batches read at once, each on its own connection.
READERS = 2

# (after_id, last_id): a batch reads the eligible rows with after_id < id <= last_id.
Range = tuple[int | None, int | None]


def batch_ranges(conn: Connection, table: Table, size: int, *, after: int | None = None,
                 upper: int | None = None, cutoff: datetime | None = None) -> list[Range]:
    """The id ranges of ``size`` rows each, in id order, of the rows of ``table`` with
    ``after < id <= upper`` and ``created_at < cutoff`` (each bound when given)."""
    from psycopg import sql

    id_, created_at = sql.Identifier(table.c.id.name), sql.Identifier(table.c.created_at.name)
    conditions = []
    if after is not None:
        conditions.append(sql.SQL("{} > %(after)s").format(id_))
    if upper is not None:
        conditions.append(sql.SQL("{} <= %(upper)s").format(id_))
    if cutoff is not None:
        conditions.append(sql.SQL("{} < %(cutoff)s").format(created_at))
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    schema = [table.schema] if table.schema else []
    query = sql.SQL(
        "SELECT {id} FROM (SELECT {id}, row_number() OVER (ORDER BY {id}) AS n "
        "FROM {table}{where}) AS s WHERE n %% %(size)s = 0 ORDER BY {id}"
    ).format(id=id_, table=sql.Identifier(*schema, table.name), where=where)
    ends = [int(end) for end in conn.exec_driver_sql(
        query.as_string(conn.connection.driver_connection),
        {"after": after, "upper": upper, "cutoff": cutoff, "size": size}).scalars()]
    starts: list[int | None] = [after, *ends]
    lasts: list[int | None] = [*ends, upper]
    return list(zip(starts, lasts, strict=True))


def read_ahead(db: Database, table: Table, cutoff: datetime, size: int,
               ranges: Sequence[Range], upper: int | None = None
               ) -> Generator[LogBatch, None, None]:
    """The batches of ``ranges`` in order; empty ones are skipped. Close when done."""
    readers: queue.SimpleQueue[BatchReader] = queue.SimpleQueue()
    opened = [BatchReader(db, table, upper) for _ in range(min(READERS, len(ranges)))]
    for reader in opened:
        readers.put(reader)

    def read(after: int | None, last: int | None) -> LogBatch | None:
        reader = readers.get()
        try:
            return reader.read(cutoff, size, after, last)
        finally:
            readers.put(reader)

    pending: deque[Future[LogBatch | None]] = deque()
    ahead = READERS + 1
    try:
        with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="opsctl-read") as pool:
            try:
                pending.extend(pool.submit(read, *span) for span in ranges[:ahead])
                for index in range(len(ranges)):
                    batch = pending.popleft().result()
                    if index + ahead < len(ranges):
                        pending.append(pool.submit(read, *ranges[index + ahead]))
                    if batch is not None:
                        yield batch
            finally:
                for future in pending:
                    future.cancel()
    finally:
        with translate_errors(db):
            for reader in opened:
                reader.close()
