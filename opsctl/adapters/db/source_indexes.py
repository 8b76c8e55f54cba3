"""The recommended indexes on the monitored table, shown or created on request.

The table belongs to the export service, so opsctl never changes it on its own; ``db init
--source-indexes`` creates what :func:`~opsctl.adapters.db.tables.source_indexes` lists.
On PostgreSQL each index is built ``CONCURRENTLY`` (writes continue during the build),
which cannot run inside a transaction, so every statement runs on an autocommit
connection. A concurrent build that failed leaves an INVALID index behind, which
``IF NOT EXISTS`` would take for done: such an index is dropped and built again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Index, inspect, text
from sqlalchemy.schema import CreateIndex

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.tables import source_indexes, source_table
from opsctl.errors import DatabaseUnavailable


@dataclass(frozen=True)
class IndexPlan:
    name: str
    statement: str
    state: str  # present | missing | invalid (before); created | rebuilt (after)


class SourceIndexes:
    def __init__(self, db: Database, table: str, columns: Mapping[str, str]) -> None:
        self.db = db
        self.table_name = table
        self.table = source_table(table, columns)

    def plan(self) -> list[IndexPlan]:
        """Each recommended index, its statement and whether it is there already."""
        with self.db.connect() as conn:
            return self._plan(conn)

    def create(self) -> list[IndexPlan]:
        """Build the missing or invalid ones; the others are left as they are."""
        done = []
        with self.db.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for item in self._plan(conn):
                if item.state == "invalid":
                    conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {self._qualified(item.name)}"))
                if item.state in ("missing", "invalid"):
                    conn.execute(text(item.statement))
                    item = IndexPlan(item.name, item.statement,
                                     "created" if item.state == "missing" else "rebuilt")
                done.append(item)
        return done

    def _plan(self, conn: Connection) -> list[IndexPlan]:
        t = self.table
        inspector = inspect(conn)
        if not inspector.has_table(t.name, schema=t.schema):
            raise DatabaseUnavailable(
                f"table {self.table_name} does not exist in {self.db.safe_url} "
                "(set [source] table, or create it with `opsctl demo seed`)"
            )
        present = {ix["name"] for ix in inspector.get_indexes(t.name, schema=t.schema)}
        invalid = self._invalid(conn)
        return [
            IndexPlan(
                index.name,
                self._statement(conn, index),
                "invalid" if index.name in invalid
                else "present" if index.name in present else "missing",
            )
            for index in source_indexes(t)
            if index.name is not None
        ]

    def _statement(self, conn: Connection, index: Index) -> str:
        if not self.db.is_sqlite:
            index.dialect_options["postgresql"]["concurrently"] = True
        return str(CreateIndex(index, if_not_exists=True).compile(dialect=conn.dialect))

    def _invalid(self, conn: Connection) -> set[str]:
        if self.db.is_sqlite:
            return set()
        rows = conn.execute(text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(:table) AND NOT i.indisvalid"
        ), {"table": self._qualified(self.table.name, quote=False)})
        return {str(name) for (name,) in rows}

    def _qualified(self, name: str, *, quote: bool = True) -> str:
        schema = self.table.schema
        if quote:
            name = f'"{name}"'
            return f'"{schema}".{name}' if schema else name
        return f"{schema}.{name}" if schema else name
