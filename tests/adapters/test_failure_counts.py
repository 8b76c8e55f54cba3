"""Counting finished exports in a window, on SQLite and PostgreSQL, on crafted rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.failure_counts import DbFailureCounts
from opsctl.errors import SourceSchemaError
from opsctl.ports import ErrorTypeCount, OutcomeCounts

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def _rows() -> list[dict[str, object]]:
    inside = START + timedelta(minutes=30)
    rows = [export_row(status="completed", created_at=inside) for _ in range(6)]
    rows += [
        export_row(status="completed", created_at=START),  # the start belongs to the window
        export_row(status="failed", error_type="timeout", created_at=inside),
        export_row(status="failed", error_type="timeout", created_at=inside),
        export_row(status="failed", error_type="timeout", created_at=END - timedelta(microseconds=1)),
        export_row(status="failed", error_type="s3_error", created_at=inside),
        export_row(status="failed", error_type="s3_error", created_at=inside),
        export_row(status="failed", error_type="auth", created_at=inside),
        export_row(status="failed", error_type=None, created_at=inside),
        # Not finished, or outside [START, END): never counted.
        export_row(status="queued", created_at=inside),
        export_row(status="processing", created_at=inside),
        export_row(status="expired", created_at=inside),
        export_row(status="failed", error_type="timeout", created_at=END),
        export_row(status="completed", created_at=START - timedelta(microseconds=1)),
        export_row(status="failed", error_type="old", created_at=START - timedelta(days=2)),
    ]
    return rows


def _prepare(url: str) -> Database:
    db = Database(url)
    db.engine.dispose()  # creates the SQLite directory
    return db


def test_counts_finished_exports_in_the_half_open_window(db_url: str) -> None:
    db = _prepare(db_url)
    insert_exports(db_url, _rows())
    counts = DbFailureCounts(db, "export_logs", {}).counts(START, END, top=10)
    assert counts == OutcomeCounts(
        completed=7,
        failed=7,
        top_error_types=(
            ErrorTypeCount("timeout", 3),
            ErrorTypeCount("s3_error", 2),
            ErrorTypeCount("auth", 1),  # ties by name
            ErrorTypeCount("unknown", 1),  # no error_type recorded
        ),
    )


def test_top_limits_the_breakdown_not_the_failed_count(db_url: str) -> None:
    db = _prepare(db_url)
    insert_exports(db_url, _rows())
    counts = DbFailureCounts(db, "export_logs", {}).counts(START, END, top=2)
    assert (counts.completed, counts.failed) == (7, 7)
    assert counts.top_error_types == (ErrorTypeCount("timeout", 3), ErrorTypeCount("s3_error", 2))


def test_empty_window(db_url: str) -> None:
    db = _prepare(db_url)
    insert_exports(db_url, [])
    assert DbFailureCounts(db, "export_logs", {}).counts(START, END, 5) == OutcomeCounts(0, 0)


def test_remapped_table_and_columns(db_url: str) -> None:
    db = _prepare(db_url)
    columns = {"status": "state_text", "created_at": "inserted_at", "error_type": "err_kind"}
    rows = [export_row(status="failed", error_type="timeout", created_at=START),
            export_row(status="completed", created_at=START)]
    insert_exports(db_url, rows, table="app_exports", columns=columns)
    counts = DbFailureCounts(db, "app_exports", columns).counts(START, END, 5)
    assert counts == OutcomeCounts(1, 1, (ErrorTypeCount("timeout", 1),))


def test_missing_table_is_a_source_error(db_url: str) -> None:
    db = _prepare(db_url)
    with pytest.raises(SourceSchemaError, match="export_logs"):
        DbFailureCounts(db, "export_logs", {}).counts(START, END, 5)
