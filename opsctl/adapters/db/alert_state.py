"""Alert state in ``opsctl_alert_state``: the memory that lets stateless cron runs keep a
cooldown and resolve an alert exactly once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, inspect, select

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.ports import AlertState

_t = tables.alert_state


class DbAlertStateStore:
    """``AlertStateStore`` on the configured database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, name: str) -> AlertState | None:
        with self.db.standalone() as conn:
            # A dry run skips the schema step: before the first real run there is no
            # table, which means no alert has ever been open. Any other run has applied
            # the schema before its job, so it spends no catalog query on the question.
            if self.db.read_only and not inspect(conn).has_table(_t.name):
                return None
            row = conn.execute(select(_t).where(_t.c.name == name)).mappings().first()
        if row is None:
            return None
        return AlertState(
            name=row["name"],
            state=row["state"],
            updated_at=row["updated_at"],
            opened_at=row["opened_at"],
            last_notified_at=row["last_notified_at"],
            details=dict(row["details"] or {}),
        )

    def save(self, state: AlertState) -> None:
        values: dict[str, Any] = {
            "name": state.name,
            "state": state.state,
            "opened_at": state.opened_at,
            "last_notified_at": state.last_notified_at,
            "updated_at": state.updated_at,
            "details": state.details,
        }
        with self.db.standalone() as conn:
            _upsert(conn, values)  # INSERT ... ON CONFLICT: one statement, atomic alone


def _upsert(conn: Connection, values: dict[str, Any]) -> None:
    # INSERT ... ON CONFLICT on both backends: one statement, no read-then-write race.
    # Each dialect's module is imported only on its own backend.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(_t).values(**values)
        changed = {key: pg.excluded[key] for key in values if key != "name"}
        conn.execute(pg.on_conflict_do_update(index_elements=[_t.c.name], set_=changed))
        return
    from sqlalchemy.dialects import sqlite

    lite = sqlite.insert(_t).values(**values)
    changed = {key: lite.excluded[key] for key in values if key != "name"}
    conn.execute(lite.on_conflict_do_update(index_elements=[_t.c.name], set_=changed))
