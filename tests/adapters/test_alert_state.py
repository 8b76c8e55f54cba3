"""opsctl_alert_state on SQLite and PostgreSQL: round trip, upsert, and a dry run before
the first real run (no table yet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from support import export_row, insert_exports

from opsctl.adapters.db import migrations
from opsctl.adapters.db.alert_state import DbAlertStateStore
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.tables import alert_state
from opsctl.ports import AlertState

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _store(url: str) -> DbAlertStateStore:
    db = Database(url)
    migrations.ensure_schema(db)
    return DbAlertStateStore(db)


def test_unknown_alert_loads_as_none(db_url: str) -> None:
    assert _store(db_url).load("export_failure_rate") is None


def test_save_then_load_round_trips_every_field(db_url: str) -> None:
    store = _store(db_url)
    state = AlertState(
        name="export_failure_rate", state="open", updated_at=T0 + timedelta(seconds=1),
        opened_at=T0, last_notified_at=T0 + timedelta(microseconds=250),
        details={"failure_rate": 0.125, "total": 40, "window_end": "2026-11-23T10:00:00.000Z"},
    )
    store.save(state)

    loaded = DbAlertStateStore(Database(db_url)).load("export_failure_rate")
    assert loaded == state
    assert loaded is not None and loaded.opened_at is not None
    assert loaded.opened_at.tzinfo is not None and loaded.opened_at.utcoffset() == timedelta(0)


def test_save_again_updates_the_one_row(db_url: str) -> None:
    store = _store(db_url)
    store.save(AlertState("export_failure_rate", "open", T0, opened_at=T0, last_notified_at=T0,
                          details={"failed": 5}))
    store.save(AlertState("other_alert", "open", T0, opened_at=T0))
    store.save(AlertState("export_failure_rate", "resolved", T0 + timedelta(minutes=10),
                          opened_at=T0, last_notified_at=None, details={"failed": 0}))

    loaded = store.load("export_failure_rate")
    assert loaded == AlertState("export_failure_rate", "resolved", T0 + timedelta(minutes=10),
                                opened_at=T0, last_notified_at=None, details={"failed": 0})
    other = store.load("other_alert")
    assert other is not None and other.state == "open"
    with store.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alert_state)).scalar_one() == 2


def test_read_only_database_without_opsctl_tables_has_no_alert(db_url: str) -> None:
    # A dry run before `db init`: the export table exists, opsctl's tables do not.
    Database(db_url).engine.dispose()  # creates the SQLite directory
    insert_exports(db_url, [export_row()])
    store = DbAlertStateStore(Database(db_url, read_only=True))
    assert store.load("export_failure_rate") is None
