"""PostgreSQL's archive path: each batch deleted first, in a transaction held open until
its object is written and verified.

One statement deletes a batch's id range and returns its rows as JSON lines, written by
the server (``row_to_json`` of each deleted row, joined in id order, with the count,
bounds and oldest and newest ``created_at``). The transaction stays open while the caller
writes, publishes and verifies the object, and commits with the object's catalogue row.
Until that commit no other session sees the rows gone and nothing of the delete is
durable: a failed write, a failed verification or a ``kill -9`` rolls it back and every
row stays. So no row is deleted unless its object was written and verified, and the
lines are exactly the rows deleted, in the versions deleted: there is no second read to
compare and no batch to read again because the application changed a row meanwhile (an
update waits for the commit, as for any delete; the delete re-checks a row an earlier
transaction changed and returns the version it removes).

This does once what reading a batch and then deleting it by its versions did twice: one
index scan instead of two, and no row-version hash on either side (about a third less
server work per batch). Each calling thread has a connection of its own, so two batches
are deleted and archived at once (``jobs.archive_lanes``); their id ranges never overlap.
A batch held open keeps its rows locked for the few milliseconds its object takes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table

from opsctl.adapters.db.archive_catalog import catalogue
from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.log_lines import check_lines
from opsctl.adapters.db.old_logs.postgres import source_sql
from opsctl.adapters.db.old_logs.statements import FIRST
from opsctl.ports import CatalogRecord, HeldBatch, LogBatch

Spans = Callable[[datetime, int], Generator[tuple[int | None, int], None, None]]


def take_sql(conn: Connection, table: Table) -> str:
    """Delete a batch's range, returning its count, bounds and lines in id order."""
    return source_sql(
        conn, table,
        "WITH gone AS (DELETE FROM {table} AS x WHERE x.{id} > %s AND x.{id} <= %s "
        "AND x.{created_at} < %s RETURNING x.{id} AS id, x.{created_at} AS created_at, "
        "row_to_json(x)::text AS line) "
        "SELECT count(*), min(id), max(id), min(created_at), max(created_at), "
        "string_agg(line, E'\\n' ORDER BY id) FROM gone")


def _lines_as_bytes(conn: Connection) -> None:
    """Text from this connection comes as the bytes the server sent: a batch's lines go
    to the archive as UTF-8 bytes, so decoding them (2 MB a batch) only to encode them
    again cost the lane's thread, holding the GIL, for nothing. Only ``take`` reads text
    on a lane's connection."""
    from psycopg.adapt import Loader

    class RawText(Loader):
        def load(self, data: Any) -> bytes:
            return bytes(data)

    raw = conn.connection.driver_connection
    assert raw is not None  # an open connection
    raw.adapters.register_loader("text", RawText)


class _Held:
    """One batch deleted on ``conn`` in its open transaction."""

    def __init__(self, db: Database, conn: Connection, batch: LogBatch) -> None:
        self.db = db
        self.conn = conn
        self.batch = batch

    def commit(self, record: CatalogRecord) -> None:
        with translate_errors(self.db):
            catalogue(self.conn, record)
            self.conn.commit()

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.rollback()


class HeldDeletes:
    """``HeldLogs`` on the configured table; ``spans`` comes from the repository, which
    walks the batch bounds the delete-only path uses. Close when the run is over."""

    def __init__(self, db: Database, table: Table, spans: Spans) -> None:
        self.db = db
        self.table = table
        self._spans = spans
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Connection] = []
        self._sql: str | None = None

    def spans(self, cutoff: datetime, size: int) -> Generator[tuple[int | None, int], None, None]:
        return self._spans(cutoff, size)

    def take(self, cutoff: datetime, after_id: int | None, last_id: int) -> HeldBatch | None:
        conn = self._connection()
        with translate_errors(self.db):
            if self._sql is None:
                self._sql = take_sql(conn, self.table)
            after = FIRST if after_id is None else after_id
            rows, first, last, oldest, newest, lines = conn.exec_driver_sql(
                self._sql, (after, last_id, cutoff)).one()
        if not rows:
            _Held(self.db, conn, LogBatch(0, 0, 0, "", b"")).release()
            return None
        payload = bytes(lines) + b"\n"
        held = _Held(self.db, conn, LogBatch(int(first), int(last), int(rows), "", payload,
                                             oldest, newest))
        try:
            check_lines(payload, int(rows))
        except BaseException:
            held.release()
            raise
        return held

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with translate_errors(self.db):
                conn = self.db.engine.connect()
                with self._lock:
                    self._opened.append(conn)
                # The JSON of a timestamptz carries the session's zone: make it UTC.
                conn.exec_driver_sql("SET TIME ZONE 'UTC'")
                conn.commit()
                _lines_as_bytes(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every thread's connection (a batch still held is rolled back)."""
        with self._lock:
            opened, self._opened = self._opened, []
        with translate_errors(self.db):
            for conn in opened:
                conn.close()
