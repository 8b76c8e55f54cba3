"""Whole partitions of a PostgreSQL export-log table partitioned by RANGE on ``created_at``.

Deleting a month of rows one batch at a time costs seconds and leaves millions of dead
rows for autovacuum; detaching and dropping its partition costs milliseconds and leaves
nothing. This module finds such partitions in the catalog and takes them in three steps,
each of which a killed run can be resumed from:

1. **Note, then detach.** The plan (the run id that names the objects, the rows per
   object, whether to archive) is written as the partition's comment, then the partition
   is detached: ``CONCURRENTLY`` (PostgreSQL 14 and later, outside a transaction, so the
   application's writes to the table never wait) unless the table has a DEFAULT partition,
   which that form does not allow. A ``CONCURRENTLY`` detach that was cut short leaves the
   partition *pending*; the next run finishes it with ``FINALIZE``.
2. **Hold.** The detached table is locked in SHARE mode (reads go on, writes wait) for as
   long as it is archived: the rows in the archive are the rows that are dropped.
3. **Catalogue and drop** in one transaction: either every object of the partition is
   catalogued and the table is gone, or neither happened.

A detached table that still carries opsctl's note is what a killed run left behind; it is
found by that note and finished with the note's run id and object size, so each object
gets the name (and content) it had, and one already written is accepted as identical
rather than written twice.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table

from opsctl.adapters.db.archive_catalog import catalogue
from opsctl.adapters.db.database import Database, translate_errors
from opsctl.adapters.db.read_ahead import batch_ranges, read_ahead
from opsctl.adapters.db.tables import source_table
from opsctl.errors import OpsctlError
from opsctl.ports import CatalogRecord, LogBatch, Partition, PartitionPlan

if TYPE_CHECKING:
    from psycopg import sql as psql

    from opsctl.settings.data import SourceSettings

# The comment opsctl writes on a partition it is about to detach starts with this.
NOTE = "opsctl logs.cleanup: "
# Rows of a held partition are read with this cutoff: every row of it, whatever its date.
_NO_CUTOFF = datetime(9999, 12, 31, tzinfo=UTC)

_RANGE_ON = """
SELECT pt.partstrat = 'r' AND pt.partnatts = 1 AND pt.partattrs[0] = a.attnum,
       pt.partdefid <> 0
FROM pg_partitioned_table pt
JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attname = %(column)s
WHERE pt.partrelid = to_regclass(%(table)s)
"""

# Attached partitions whose upper bound is at or before the cutoff (the bound's text is
# written and read back in the session's time zone), and those pending a detach.
_ATTACHED = """
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), i.inhdetachpending,
       (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                     'TO \\(''([^'']*)''\\)\\s*$'))[1]::timestamptz AS upper,
       d.description, pg_has_role(c.relowner, 'USAGE')
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass
     AND d.objsubid = 0
WHERE i.inhparent = to_regclass(%(table)s)
ORDER BY upper NULLS LAST, c.relname
"""

# Tables opsctl detached from this table and did not drop (a run was killed in between).
_LEFT_DETACHED = """
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), d.description,
       pg_has_role(c.relowner, 'USAGE')
FROM pg_description d
JOIN pg_class c ON c.oid = d.objoid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.classoid = 'pg_class'::regclass AND d.objsubid = 0
  AND d.description LIKE %(note)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""


class PartitionsRepository:
    """``LogPartitions`` on the configured table; nothing to take unless it is RANGE
    partitioned on its ``created_at`` column."""

    def __init__(self, db: Database, source: SourceSettings) -> None:
        if db.is_sqlite:
            raise ValueError("partitions are a PostgreSQL feature")
        self.db = db
        self.table: Table = source_table(source.table, source.columns.model_dump())
        self._columns = source.columns.model_dump()
        self._oid: int | None = None
        self._has_default = False

    def close(self) -> None:
        """Nothing is held between calls: each borrows a connection (the run's pool keeps
        one for it) and gives it back."""

    # --- finding them --------------------------------------------------------------------

    def plan(self, cutoff: datetime, whole: bool = True) -> PartitionPlan | None:
        with self._autocommit() as conn:
            found = conn.exec_driver_sql(_RANGE_ON, {
                "table": self._qualified(), "column": self.table.c.created_at.name}).first()
            if found is None or not found[0]:
                return None
            self._has_default = bool(found[1])
            self._oid, owned = conn.exec_driver_sql(
                "SELECT c.oid, pg_has_role(c.relowner, 'USAGE') FROM pg_class c "
                "WHERE c.oid = to_regclass(%(table)s)", {"table": self._qualified()}).one()
            # What earlier runs began comes first: it is finished before anything new.
            begun: list[tuple[str, dict[str, Any], bool]] = []
            for _, name, note, _ in conn.exec_driver_sql(
                    _LEFT_DETACHED, {"note": NOTE + "%"}).all():
                noted = self._noted(note)
                if noted is not None:
                    begun.append((name, noted, False))
            taken: list[tuple[str, datetime]] = []
            rest: list[str] = []  # attached partitions that may hold some old rows
            not_owned: list[str] = []
            stale: list[str] = []
            for _, name, pending, upper, note, mine in conn.exec_driver_sql(
                    _ATTACHED, {"table": self._qualified()}).all():
                noted = self._noted(note)
                if pending:
                    if noted is not None:  # else another tool's detach: not opsctl's
                        begun.append((name, noted, True))
                    continue
                if noted is not None:
                    stale.append(name)  # noted by a run whose detach failed
                if whole and upper is not None and upper <= cutoff:
                    if owned and mine:
                        taken.append((name, upper))
                        continue
                    not_owned.append(name)
                rest.append(name)
            if stale and not self.db.read_only:
                self._forget(conn, stale)
            counts = self._counts(conn, [name for name, _, _ in begun]
                                  + [name for name, _ in taken], rest, cutoff)
            partitions = [_begun(name, counts[name], noted, pending)
                          for name, noted, pending in begun]
            partitions += [Partition(name, counts[name], upper) for name, upper in taken]
            return PartitionPlan(partitions, sum(counts.values()), not_owned)

    def _forget(self, conn: Connection, names: Sequence[str]) -> None:
        """Clear the notes of attached partitions: a run noted them and then failed to
        detach them (one run at a time holds the job's lock, so no run is at it now).
        Left in place, a note would make a table someone else detaches later look like
        one opsctl began."""
        for name in names:
            self._execute(conn, "COMMENT ON TABLE {part} IS NULL", name)

    def _noted(self, note: str | None) -> dict[str, Any] | None:
        """The plan an opsctl run noted on a partition of this table, or None."""
        if not note or not note.startswith(NOTE):
            return None
        try:
            noted = json.loads(note[len(NOTE):])
        except ValueError:
            return None
        if not isinstance(noted, dict) or noted.get("parent_oid") != self._oid:
            return None
        return noted

    def _counts(self, conn: Connection, whole: Sequence[str], rest: Sequence[str],
                cutoff: datetime) -> dict[str, int]:
        """Every row of each whole partition, and the rows older than the cutoff of each
        other one, in one statement: each partition is counted once, by its own index."""
        from psycopg import sql

        names = [*whole, *rest]
        if not names:
            return {}
        older = sql.SQL(" WHERE {} < %(cutoff)s").format(
            sql.Identifier(self.table.c.created_at.name))
        parts = [sql.SQL("(SELECT count(*) FROM {}{})").format(
            _identifier(name), older if i >= len(whole) else sql.SQL(""))
            for i, name in enumerate(names)]
        query = sql.SQL("SELECT ARRAY[{}]").format(sql.SQL(", ").join(parts))
        found = conn.exec_driver_sql(query.as_string(conn.connection.driver_connection),
                                     {"cutoff": cutoff}).scalar_one()
        return {name: int(n) for name, n in zip(names, found, strict=True)}

    # --- taking them ---------------------------------------------------------------------

    def detach(self, partition: Partition, run_id: str, batch_size: int,
               archive_uri: str | None) -> Partition:
        if partition.detached:
            return partition
        if partition.pending:  # a CONCURRENTLY detach cut short: already noted
            with self._autocommit() as conn:
                self._execute(conn, "ALTER TABLE {parent} DETACH PARTITION {part} FINALIZE",
                              partition.name)
            return replace(partition, detached=True, pending=False)
        noted = {
            "parent_oid": self._oid, "parent": self._qualified(), "run_id": run_id,
            "batch_size": batch_size, "archive": archive_uri is not None,
            "archive_uri": archive_uri,
            "upper": partition.upper.isoformat() if partition.upper else None,
            "noted_at": datetime.now(UTC).isoformat(),
        }
        with self._autocommit() as conn:
            self._execute(conn, "COMMENT ON TABLE {part} IS {note}", partition.name,
                          note=NOTE + json.dumps(noted))
            concurrently = "" if self._has_default else " CONCURRENTLY"
            try:
                self._execute(conn, "ALTER TABLE {parent} DETACH PARTITION {part}"
                              + concurrently, partition.name)
            except Exception:
                # Still attached: its note must not outlive this run (see _forget).
                with contextlib.suppress(Exception):
                    self._execute(conn, "COMMENT ON TABLE {part} IS NULL", partition.name)
                raise
        return _begun(partition.name, partition.rows, noted, pending=False)

    @contextmanager
    def hold(self, partition: Partition) -> Iterator[_Held]:
        if not partition.detached:
            raise ValueError(f"{partition.name} is still attached")
        with translate_errors(self.db):
            conn = self._spare_connection()
        held: _Held | None = None
        try:
            with translate_errors(self.db):
                transaction = conn.begin()
                self._execute(conn, "LOCK TABLE {part} IN SHARE MODE", partition.name)
            held = _Held(self, conn, partition)
            yield held
            held.settle()
            if transaction.is_active:
                with translate_errors(self.db):
                    transaction.rollback()
        finally:
            if held is not None:
                held.settle()  # a drop still running on the connection ends first
            with translate_errors(self.db):
                conn.close()

    # --- plumbing ------------------------------------------------------------------------

    def _spare_connection(self) -> Connection:
        """A connection other than the run's own. Pooled, the run's own is the one the
        pool hands out first (the most recently returned), and it holds the job's advisory
        lock: a partition dropped while the batches run keeps its connection that long, so
        it takes the next one and leaves the run's own to the batches and the bookkeeping,
        and the lock is released on the session that took it."""
        if not self.db.pooled:
            return self.db.engine.connect()
        own = self.db.engine.connect()
        try:
            return self.db.engine.connect()
        finally:
            own.close()

    def _qualified(self) -> str:
        """The table as ``to_regclass`` reads it (quoted parts)."""
        parts = [self.table.schema, self.table.name] if self.table.schema else [
            self.table.name]
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)

    @contextmanager
    def _autocommit(self) -> Iterator[Connection]:
        """A connection where each statement commits on its own, as ``DETACH ...
        CONCURRENTLY`` requires; driver errors come out as opsctl's. In UTC, so a bound
        read back from its text (a key without a time zone too) means what the cutoff
        means."""
        with translate_errors(self.db), self.db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("SET TIME ZONE 'UTC'")
            yield conn

    def _execute(self, conn: Connection, template: str, partition: str,
                 note: str | None = None) -> Any:
        from psycopg import sql

        query = sql.SQL(template).format(
            parent=sql.SQL(self._qualified()), part=_identifier(partition),
            note=sql.Literal(note))
        return conn.exec_driver_sql(query.as_string(conn.connection.driver_connection))



class _Held:
    """A detached partition under a SHARE lock, on the connection that took it."""

    def __init__(self, repository: PartitionsRepository, conn: Connection,
                 partition: Partition) -> None:
        self.repository = repository
        self.conn = conn
        self.partition = partition
        schema, _, name = _unquoted(partition.name)
        self.table = source_table(name, repository._columns, schema=schema or None)
        self._dropping: Future[int] | None = None

    def batches(self, size: int) -> Generator[LogBatch, None, None]:
        """Several batches read at once (``read_ahead``), each on a connection of its own:
        the SHARE lock lets reads through."""
        with translate_errors(self.repository.db):
            ranges = batch_ranges(self.conn, self.table, size)
        return read_ahead(self.repository.db, self.table, _NO_CUTOFF, size, ranges)

    def drop(self, records: Sequence[CatalogRecord], archived: bool) -> int:
        """The rows are counted here, under the lock (nothing can add or remove one now):
        the count made when the partition was planned is the guard's, and a row written to
        the partition between that count and the detach is dropped too. With an archive
        they must all be in its objects."""
        repository = self.repository
        with translate_errors(repository.db):
            rows = int(repository._execute(self.conn, "SELECT count(*) FROM {part}",
                                           self.partition.name).scalar_one())
            if archived and sum(record.rows for record in records) != rows:
                raise OpsctlError(
                    f"{self.partition.name} holds {rows} rows but its archive objects "
                    f"{sum(record.rows for record in records)}; nothing dropped")
            for record in records:
                catalogue(self.conn, record)
            repository._execute(self.conn, "DROP TABLE {part}", self.partition.name)
            self.conn.commit()
        return rows

    def drop_meanwhile(self) -> Callable[[], int]:
        """``drop([], archived=False)`` on a thread of its own, so that counting the rows
        and freeing the table's files (at 10M rows, 0.4 s each) overlap what the caller
        does next on other connections; the call returned waits for it."""
        if self._dropping is not None:
            raise ValueError(f"{self.partition.name} is already being dropped")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsctl-drop")
        try:
            self._dropping = executor.submit(self.drop, (), False)
        finally:
            executor.shutdown(wait=False)
        return self._dropping.result

    def settle(self) -> None:
        """Wait for a drop begun by ``drop_meanwhile`` (its outcome is its caller's)."""
        if self._dropping is not None:
            wait([self._dropping])


def _begun(name: str, rows: int, noted: dict[str, Any], pending: bool) -> Partition:
    """A partition as an earlier run (or this one) noted it before detaching it."""
    upper = noted.get("upper")
    return Partition(name, rows, datetime.fromisoformat(upper) if upper else None,
                     detached=not pending, pending=pending, run_id=str(noted["run_id"]),
                     batch_size=int(noted["batch_size"]), archived=bool(noted["archive"]),
                     archive_uri=noted.get("archive_uri"))


def _unquoted(qualified: str) -> tuple[str, str, str]:
    """``"schema"."name"`` (as ``format('%I.%I')`` writes it) back into its parts."""
    parts: list[str] = []
    current, quoted, i = "", False, 0
    while i < len(qualified):
        char = qualified[i]
        if quoted:
            if char == '"' and qualified[i + 1:i + 2] == '"':
                current += '"'
                i += 1
            elif char == '"':
                quoted = False
            else:
                current += char
        elif char == '"':
            quoted = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
        i += 1
    parts.append(current)
    schema, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[-1])
    return schema, ".", name


def _identifier(qualified: str) -> psql.Composable:
    from psycopg import sql

    schema, _, name = _unquoted(qualified)
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)
