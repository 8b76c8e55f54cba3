"""Table definitions: opsctl's own ``opsctl_*`` tables and the monitored source table.

The source table is built from ``[source]`` so every column can be remapped; columns keep
their contract names as SQLAlchemy keys (``table.c.created_at``) whatever they are called
in the database, so no query has to know about the remapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    literal_column,
)

from opsctl.adapters.db.types import JsonDocument, UtcDateTime

SCHEMA_VERSION = 2

opsctl_metadata = MetaData()

schema_version = Table(
    "opsctl_schema_version",
    opsctl_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

runs = Table(
    "opsctl_runs",
    opsctl_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("run_id", String(36), nullable=False, unique=True),
    Column("host", String(255), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("state", String(32), nullable=False),
    Column("exit_code", Integer, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    Column("summary", JsonDocument, nullable=True),
    Column("error", JsonDocument, nullable=True),
    # (job, finished_at) serves "latest runs of a job" and freshness checks;
    # finished_at alone serves the retention delete.
    Index("ix_opsctl_runs_job_finished", "job", "finished_at"),
    Index("ix_opsctl_runs_finished", "finished_at"),
)

alert_state = Table(
    "opsctl_alert_state",
    opsctl_metadata,
    Column("name", String(64), primary_key=True),
    Column("state", String(16), nullable=False),  # open | resolved
    Column("opened_at", UtcDateTime, nullable=True),
    Column("last_notified_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("details", JsonDocument, nullable=True),
)

metric_rollups = Table(
    "opsctl_metric_rollups",
    opsctl_metadata,
    Column("period", String(16), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("total_exports", BigInteger, nullable=False),
    Column("failure_rate", Float, nullable=True),
    Column("metrics", JsonDocument, nullable=False),
    Column("computed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("period", "window_start", "window_end",
                         name="pk_opsctl_metric_rollups"),
)

# One row per verified archive object, written in the transaction that deletes its rows: a
# catalogued object always holds rows that are gone from the table. ``uri`` is the archive
# root as configured (``file:///dir``, ``s3://bucket/prefix``), ``key`` the object's name
# below it; ``logs verify`` and ``logs restore`` hold the objects they find against it.
archive_objects = Table(
    "opsctl_archive_objects",
    opsctl_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("uri", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("source_table", Text, nullable=False),
    Column("first_id", BigInteger, nullable=False),
    Column("last_id", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("min_created_at", UtcDateTime, nullable=True),
    Column("max_created_at", UtcDateTime, nullable=True),
    Column("run_id", String(36), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("uri", "key", name="uq_opsctl_archive_objects_uri_key"),
    Index("ix_opsctl_archive_objects_source_ids", "source_table", "first_id"),
)

SOURCE_COLUMNS = (
    "id", "export_id", "user_id", "format", "status", "conversation_count", "duration_ms",
    "file_size_bytes", "file_path", "error_type", "error_message", "created_at", "expires_at",
)


def source_table(table: str, columns: Mapping[str, str], metadata: MetaData | None = None,
                 schema: str | None = None) -> Table:
    """The monitored table as configured; ``table`` may be ``schema.name``, unless the
    schema is given apart (then ``table`` is the bare name, dots and all)."""
    if schema is None:
        schema, _, name = table.rpartition(".")
    else:
        name = table

    def col(key: str, type_: Any, **kw: Any) -> Column[Any]:
        return Column(columns.get(key, key), type_, key=key, **kw)

    return Table(
        name,
        metadata or MetaData(),
        col("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
            autoincrement=True),
        col("export_id", String(36), nullable=False),
        col("user_id", Text, nullable=False),
        col("format", String(32), nullable=False),
        col("status", String(32), nullable=False),
        col("conversation_count", Integer, nullable=False, default=0),
        col("duration_ms", Integer, nullable=True),
        col("file_size_bytes", BigInteger, nullable=True),
        col("file_path", Text, nullable=True),
        col("error_type", Text, nullable=True),
        col("error_message", Text, nullable=True),
        col("created_at", UtcDateTime, nullable=False),
        col("expires_at", UtcDateTime, nullable=True),
        schema=schema or None,
    )


def source_indexes(table: Table) -> list[Index]:
    """The indexes opsctl's queries want on the source table (``demo seed`` creates them
    on the tables it makes; ``db init --source-indexes`` on an existing one).

    ``(created_at, id)`` serves metrics windows, failure-rate and log retention; with the
    id in it, the eligible count and highest eligible id that bound a cleanup's batches
    are one index-only scan (a ``(created_at)`` index, which earlier versions recommended,
    makes that scan fetch every eligible row from the table). The partial
    ``(expires_at, id)`` index holds only the rows files cleanup may still act on (not yet
    expired, with a file path), a few days of exports whatever the table's size: counting the
    due rows is a range scan of it, and batches walk it in ``(expires_at, id)`` order.
    """
    # The predicate is the cleanup query's own (a path that is NULL or empty has no file),
    # so the count is an index-only scan: no heap fetch per pending row.
    pending = and_(table.c.status != literal_column("'expired'"),
                   table.c.file_path.is_not(None),
                   table.c.file_path != literal_column("''"))
    return [
        Index(f"ix_{table.name}_created_at_id", table.c.created_at, table.c.id),
        Index(f"ix_{table.name}_expires_pending", table.c.expires_at, table.c.id,
              postgresql_where=pending, sqlite_where=pending),
    ]
