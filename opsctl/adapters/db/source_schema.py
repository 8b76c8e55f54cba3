"""The one wording of "the source table (or a column of it) is not there".

Every job reads the table ``[source]`` names; when it is missing the database did answer,
so the error is a configuration error (78) that names the key to fix, never an outage (3).
Jobs that check up front and the driver-error translation both build it here, so the
message reads the same whichever job met it.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, inspect

from opsctl.errors import SourceSchemaError


def missing_table(table: str, where: str) -> SourceSchemaError:
    return SourceSchemaError(
        f"source table {table} does not exist in {where}: set [source] table to the export "
        "table (or create it with `opsctl demo seed`)",
        key="source.table",
    )


def missing_column(column: str, where: str) -> SourceSchemaError:
    return SourceSchemaError(
        f"source table has no column {column} in {where}: map the column in [source.columns]",
        key="source.columns",
    )


def require_table(conn: Connection, table: Table, where: str) -> None:
    """Raise the source error when ``table`` is not in the database."""
    if not inspect(conn).has_table(table.name, schema=table.schema):
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        raise missing_table(name, where)
