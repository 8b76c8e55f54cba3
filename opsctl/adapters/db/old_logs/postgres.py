"""PostgreSQL's archived deletes, written in psycopg's SQL composition: the server
returns what it removed (a version digest, or each row's JSON) in the same statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table

from opsctl.adapters.db.log_lines import ROW_VERSION


def source_sql(conn: Connection, table: Table, template: str) -> str:
    """``template`` with ``{table}``, ``{id}`` and ``{created_at}`` filled in as quoted
    identifiers of the source table (mapped column names, schema included)."""
    from psycopg import sql

    c = table.c
    schema = [table.schema] if table.schema else []
    return sql.SQL(template).format(
        table=sql.Identifier(*schema, table.name),
        id=sql.Identifier(c.id.name),
        created_at=sql.Identifier(c.created_at.name),
    ).as_string(conn.connection.driver_connection)


def delete_archived_sql(conn: Connection, table: Table) -> str:
    """Delete a batch's range, returning the count and version of what went."""
    return source_sql(
        conn, table,
        "WITH gone AS (DELETE FROM {table} AS x WHERE x.{id} >= %s AND x.{id} <= %s "
        "AND x.{created_at} < %s RETURNING x.{id} AS id, "
        + ROW_VERSION.format(alias="x") + " AS v) "
        "SELECT count(*), sum(v)::text FROM gone")


def delete_ids(conn: Connection, table: Table, ids: Sequence[int],
               cutoff: datetime) -> dict[int, dict[str, Any]]:
    """Delete these rows where older than the cutoff; their content as archived lines."""
    found: dict[int, dict[str, Any]] = {}
    query = source_sql(
        conn, table,
        "DELETE FROM {table} AS x WHERE x.{id} = ANY(%s) AND x.{created_at} < %s "
        "RETURNING x.{id}, row_to_json(x)::text")
    conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")  # the JSON's timestamps
    for row_id, line in conn.exec_driver_sql(query, (list(ids), cutoff)):
        found[int(row_id)] = json.loads(line)
    return found


def estimated_rows(conn: Connection, table: Table) -> int | None:
    """The planner's row count of the table (of its partitions, when partitioned); None
    while any of them has never been analysed."""
    from psycopg import sql

    schema = [table.schema] if table.schema else []
    name = sql.Identifier(*schema, table.name).as_string(conn.connection.driver_connection)
    total, unknown = conn.exec_driver_sql(
        "SELECT sum(c.reltuples), bool_or(c.reltuples < 0) FROM pg_class c "
        "WHERE c.relkind = 'r' AND c.oid IN (SELECT relid FROM pg_partition_tree("
        "to_regclass(%s)) WHERE isleaf UNION SELECT to_regclass(%s))", (name, name)).one()
    return None if total is None or unknown else int(total)
