"""The rows of files cleanup: exports whose ``expires_at`` has passed and whose file is
still there to delete.

Rows are walked by keyset (``id > last ORDER BY id LIMIT n``), never by OFFSET, so each
batch costs the same on a table of millions, and every statement is its own short
transaction: the application writing the table never waits on a cleanup for long.

The connection, though, is kept for the whole run. The engine does not pool (NullPool),
and a connection per statement cost more than the deletes themselves: a TCP connect and
authentication on PostgreSQL, and on SQLite a WAL checkpoint each time the last
connection closes.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    and_,
    any_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from opsctl.adapters.db.database import Database, RunConnection
from opsctl.adapters.db.tables import source_table
from opsctl.ports import ExpiredExport

if TYPE_CHECKING:
    from opsctl.settings.data import SourceSettings

EXPIRED = "expired"


class ExpiredExportsRepository:
    """``ExpiredExports`` on the configured source table (columns remapped as configured)."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())
        self._run = RunConnection(db)

    def __enter__(self) -> ExpiredExportsRepository:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._run.close()

    def _candidates(self, now: datetime) -> ColumnElement[bool]:
        c = self.table.c
        return and_(
            c.expires_at < now,
            c.status != EXPIRED,
            c.file_path.is_not(None),
            c.file_path != "",
        )

    def count(self, now: datetime) -> int:
        query = select(func.count()).select_from(self.table).where(self._candidates(now))
        with self._run.transaction() as conn:
            return int(conn.execute(query).scalar_one())

    def batch(self, now: datetime, after_id: int | None, size: int) -> list[ExpiredExport]:
        c = self.table.c
        query = (
            select(c.id, c.export_id, c.file_path, c.file_size_bytes)
            .where(self._candidates(now))
            .order_by(c.id)
            .limit(size)
        )
        if after_id is not None:
            query = query.where(c.id > after_id)
        with self._run.transaction() as conn:
            rows: list[Any] = list(conn.execute(query))
        return [
            ExpiredExport(int(id_), str(export_id), str(path),
                          None if size_bytes is None else int(size_bytes))
            for id_, export_id, path, size_bytes in rows
        ]

    def mark_expired(self, ids: list[int]) -> int:
        if not ids:
            return 0
        c = self.table.c
        # One array parameter on PostgreSQL: an expanded IN of 500 parameters cost the
        # client nearly three times the UPDATE itself.
        in_batch = (c.id.in_(ids) if self.db.is_sqlite
                    else c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger))))
        statement = update(self.table).where(in_batch, c.status != EXPIRED).values(
            status=EXPIRED)
        with self._run.transaction() as conn:
            if not self.db.is_sqlite:
                # No WAL flush wait per batch. A crash may forget the last marks, but their
                # files are gone: the next run finds them missing and marks them again.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            return int(conn.execute(statement).rowcount or 0)
