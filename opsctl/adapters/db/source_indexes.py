"""The recommended indexes on the monitored table, shown or created on request.

The table belongs to the export service, so opsctl never changes it on its own; ``db init
--source-indexes`` creates what :func:`~opsctl.adapters.db.tables.source_indexes` lists.
On PostgreSQL each index is built ``CONCURRENTLY`` (writes continue during the build),
which cannot run inside a transaction, so every statement runs on an autocommit
connection. A concurrent build that failed leaves an INVALID index behind, which
``IF NOT EXISTS`` would take for done: such an index is dropped and built again.

PostgreSQL cannot build an index CONCURRENTLY on a partitioned table. There the documented
procedure is followed: the index is created ``ON ONLY`` the parent (invalid, instantly),
built CONCURRENTLY on each partition and attached to the parent's, which becomes valid
once every partition has its own. Each step is idempotent, so an interrupted run is
finished by the next one.
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
            partitioned = self._partitions(conn) is not None
            for item in self._plan(conn):
                if partitioned and item.state in ("missing", "invalid"):
                    for statement in item.statement.split(";\n"):
                        conn.execute(text(statement))
                    done.append(IndexPlan(item.name, item.statement,
                                          "created" if item.state == "missing" else "rebuilt"))
                    continue
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
        partitions = self._partitions(conn)
        if partitions is not None:
            present |= self._partitioned_index_names(conn)
        return [
            IndexPlan(
                index.name,
                self._statement(conn, index) if partitions is None
                else self._partitioned_statements(conn, index, partitions),
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

    def _partitions(self, conn: Connection) -> list[str] | None:
        """The partitions of a partitioned PostgreSQL table, or None for a plain table."""
        if self.db.is_sqlite:
            return None
        kind = conn.execute(text(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(:table)"
        ), {"table": self._qualified(self.table.name, quote=False)}).scalar()
        if kind != "p":
            return None
        rows = conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:table) ORDER BY c.relname"
        ), {"table": self._qualified(self.table.name, quote=False)})
        return [str(name) for (name,) in rows]

    def _partitioned_index_names(self, conn: Connection) -> set[str]:
        # The inspector may not list the indexes of a partitioned table.
        rows = conn.execute(text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(:table)"
        ), {"table": self._qualified(self.table.name, quote=False)})
        return {str(name) for (name,) in rows}

    def _partitioned_statements(self, conn: Connection, index: Index,
                                partitions: list[str]) -> str:
        parent = str(CreateIndex(index, if_not_exists=True).compile(dialect=conn.dialect))
        statements = [parent.replace(" ON ", " ON ONLY ", 1)]
        columns = {c.key: c.name for c in self.table.columns}
        for partition in partitions:
            name = f"{self.table.schema}.{partition}" if self.table.schema else partition
            child_table = source_table(name, columns)
            child = next(ix for ix in source_indexes(child_table)
                         if ix.name and ix.name.removeprefix(f"ix_{partition}") ==
                         (index.name or "").removeprefix(f"ix_{self.table.name}"))
            child.dialect_options["postgresql"]["concurrently"] = True
            statements.append(str(CreateIndex(child, if_not_exists=True)
                                  .compile(dialect=conn.dialect)))
            statements.append(f"ALTER INDEX {self._qualified(index.name or '')} "
                              f"ATTACH PARTITION {self._qualified(child.name or '')}")
        return ";\n".join(statements)

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
