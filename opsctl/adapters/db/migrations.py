"""Create or upgrade opsctl's own tables.

Each step moves the schema from version N-1 to N and is recorded in
``opsctl_schema_version``; running ``ensure_schema`` again is a cheap no-op, so every job
calls it and a fresh crontab line works against an empty database.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, exc, func, inspect, select, text

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.locks import advisory_key
from opsctl.errors import DatabaseUnavailable
from opsctl.runtime import utc_now


def _v1(conn: Connection) -> None:
    tables.opsctl_metadata.create_all(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    # The archive catalog. On a fresh database v1 already made it (create_all above).
    tables.archive_objects.create(conn, checkfirst=True)


# A new step creates only what it adds, with checkfirst, so it is a no-op after v1 on a
# fresh database. The time the schema was first created (the ``applied_at`` of version 1)
# is the start of history for rules such as "overdue since the tables were created".
STEPS: dict[int, Callable[[Connection], None]] = {1: _v1, 2: _v2}
LATEST = max(STEPS)
assert LATEST == tables.SCHEMA_VERSION


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(tables.schema_version.name):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(tables.schema_version.c.version), 0)))
               .scalar_one())


def _recorded_version(conn: Connection) -> int:
    """The schema version in one query, or the catalog's answer when the table is not
    there yet (a fresh database)."""
    try:
        version = conn.execute(select(func.max(tables.schema_version.c.version))).scalar()
    except (exc.ProgrammingError, exc.OperationalError):
        conn.rollback()
        return current_version(conn)
    return int(version or 0)


def pending_versions(db: Database) -> list[int]:
    """The steps ``ensure_schema`` would apply; reads only (a missing SQLite file: all)."""
    path = db.sqlite_path
    if db.read_only and path is not None and not path.exists():
        return list(range(1, LATEST + 1))
    with db.connect() as conn:
        return list(range(current_version(conn) + 1, LATEST + 1))


def ensure_schema(db: Database) -> list[int]:
    """Apply the missing steps; return the versions applied (empty when up to date).

    Every run calls it, so the usual case, a current schema, costs one indexed query;
    the catalog is consulted only when that query finds no version table."""
    with db.standalone() as conn:
        if _recorded_version(conn) >= LATEST:
            return []
    try:
        return _upgrade(db)
    except DatabaseUnavailable:
        # Two first runs at once on SQLite: the loser finds the tables made by the winner.
        with db.connect() as conn:
            if current_version(conn) >= LATEST:
                return []
        raise


def _upgrade(db: Database) -> list[int]:
    path = db.sqlite_path
    if path is None:
        return _apply(db)
    # SQLite commits DDL statement by statement, so two first runs could interleave their
    # CREATE TABLEs; a file lock beside the database makes the upgrade one at a time.
    from filelock import FileLock

    with FileLock(f"{path}.schema.lock", timeout=max(30.0, db.connect_timeout_s)):
        return _apply(db)


def _apply(db: Database) -> list[int]:
    with db.begin() as conn:
        if not db.is_sqlite:
            # Two first runs at once must not both create the tables.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("schema")})
        applied = []
        for version in range(current_version(conn) + 1, LATEST + 1):
            STEPS[version](conn)
            conn.execute(
                tables.schema_version.insert().values(version=version, applied_at=utc_now())
            )
            applied.append(version)
        return applied
