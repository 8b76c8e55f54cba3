"""SQLite writes archive lines itself (``json_object``); they must be byte for byte the
lines Python's encoder writes, and every row SQLite cannot write exactly (a REAL, a
timestamp in another format, a column whose values Python converts) goes through Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from support import export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.log_lines import encode_row
from opsctl.adapters.db.migrations import ensure_schema
from opsctl.adapters.db.old_logs import OldLogsRepository
from opsctl.ports import CatalogRecord, LogBatch
from opsctl.settings.data import SourceSettings

CUTOFF = datetime(2026, 10, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=3)
NAMES = ["id", "export_id", "user_id", "format", "status", "conversation_count",
         "duration_ms", "file_size_bytes", "file_path", "error_type", "error_message",
         "created_at", "expires_at"]
HOSTILE = [
    'quotes " and \' and `', "new\nline\r\t", "back\\slash \\n \\\\ trailing \\",
    "é ü ß 日本語 🚀 \u2028 \u00a0", "control \x01\x1f\x7f \b\f", "",
]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lines.db'}"


@pytest.fixture
def repo(url: str) -> Iterator[OldLogsRepository]:
    ensure_schema(Database(url))
    repository = OldLogsRepository(Database(url), SourceSettings())
    try:
        yield repository
    finally:
        repository.close()
        repository.db.dispose()


def python_line(row: dict[str, Any]) -> bytes:
    values = {"conversation_count": 10, "duration_ms": 1000, "file_size_bytes": 1000,
              "file_path": None, "error_type": None, "error_message": None,
              "expires_at": None, **row}
    return encode_row(NAMES, tuple(values[name] for name in NAMES))


def record(batch: LogBatch) -> CatalogRecord:
    return CatalogRecord("file:///a", f"t/{batch.first_id}.jsonl.gz", "export_logs",
                         batch.first_id, batch.last_id, batch.rows, 10, "0" * 64,
                         batch.min_created_at, batch.max_created_at, "run-1", CUTOFF)


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def count(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        total = int(conn.execute(text("SELECT count(*) FROM export_logs")).scalar_one())
    engine.dispose()
    return total


def test_sqlite_writes_the_bytes_python_writes(url: str, repo: OldLogsRepository) -> None:
    fractions = [0, 1, 120_000, 500_000, 999_999, 10]
    rows = [dict(id=i + 1, export_id=f"e-{i}", user_id=value, format="csv",
                 status="failed", error_message=value, file_path=value,
                 file_size_bytes=-(2**62) if i % 2 else 2**62, duration_ms=None,
                 created_at=OLD + timedelta(microseconds=fractions[i]),
                 expires_at=None if i % 3 else OLD + timedelta(days=7, microseconds=i))
            for i, value in enumerate(HOSTILE)]
    insert_exports(url, [export_row(**row) for row in rows])

    [batch] = list(repo.batches(CUTOFF, 100))

    assert batch.payload == b"".join(python_line(row) for row in rows)
    assert (batch.min_created_at, batch.max_created_at) == (OLD, OLD + timedelta(
        microseconds=999_999))
    assert repo.delete_batch(batch, CUTOFF, record(batch)) is True
    assert count(url) == 0


def test_rows_sqlite_cannot_write_exactly_go_through_python(
    url: str, repo: OldLogsRepository
) -> None:
    insert_exports(url, [export_row(id=i, export_id=f"e-{i}", created_at=OLD)
                         for i in range(1, 6)])
    # A REAL (SQLite writes 0.3, Python 0.30000000000000004) and timestamps stored in
    # other formats than opsctl's, which Python reads as the same instants.
    execute(url, "UPDATE export_logs SET duration_ms = 0.1 + 0.2 WHERE id = 2")
    execute(url, "UPDATE export_logs SET expires_at = '2026-09-08 01:00:00+01:00' "
                 "WHERE id = 4")
    execute(url, "UPDATE export_logs SET created_at = '2026-09-28 00:00:00.5' WHERE id = 5")

    [batch] = list(repo.batches(CUTOFF, 100))

    lines = batch.payload.splitlines()
    assert len(lines) == 5 and batch.rows == 5
    assert json.loads(lines[1])["duration_ms"] == 0.30000000000000004
    assert b'"duration_ms":0.30000000000000004' in lines[1]
    assert b'"expires_at":"2026-09-08T00:00:00+00:00"' in lines[3]
    assert b'"created_at":"2026-09-28T00:00:00.5+00:00"' in lines[4]
    assert lines[0] == python_line(dict(id=1, export_id="e-1", user_id="user-1",
                                        format="json", status="completed",
                                        created_at=OLD)).rstrip(b"\n")
    assert batch.max_created_at == OLD + timedelta(microseconds=500_000)
    assert repo.delete_batch(batch, CUTOFF, record(batch)) is True
    assert count(url) == 0


def test_a_changed_row_that_python_must_write_still_stops_the_delete(
    url: str, repo: OldLogsRepository
) -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD) for i in range(1, 4)])
    batch = next(repo.batches(CUTOFF, 100))
    execute(url, "UPDATE export_logs SET duration_ms = 2.5 WHERE id = 2")

    assert repo.delete_batch(batch, CUTOFF, record(batch)) is False
    assert count(url) == 3


def test_a_column_python_converts_sends_the_whole_table_through_python(
    url: str, repo: OldLogsRepository
) -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD) for i in range(1, 3)])
    execute(url, "ALTER TABLE export_logs ADD COLUMN archived BOOLEAN")
    execute(url, "UPDATE export_logs SET archived = id - 1")

    [batch] = list(repo.batches(CUTOFF, 100))

    assert [json.loads(line)["archived"] for line in batch.payload.splitlines()] == [
        False, True]
    assert repo.delete_batch(batch, CUTOFF, record(batch)) is True
    assert count(url) == 0


def test_lines_follow_ids_across_batches(url: str, repo: OldLogsRepository) -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD - timedelta(seconds=i))
                         for i in (9, 3, 7, 1, 5)])

    batches = list(repo.batches(CUTOFF, 2))

    ids = [[json.loads(line)["id"] for line in b.payload.splitlines()] for b in batches]
    assert ids == [[1, 3], [5, 7], [9]]
    assert (batches[0].min_created_at, batches[0].max_created_at) == (
        OLD - timedelta(seconds=3), OLD - timedelta(seconds=1))


def test_a_blob_anywhere_sends_its_batch_row_by_row(url: str, repo: OldLogsRepository) -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD) for i in range(1, 4)])
    execute(url, "UPDATE export_logs SET error_message = X'00ff' WHERE id = 2")
    execute(url, "UPDATE export_logs SET duration_ms = X'0a' WHERE id = 3")

    [batch] = list(repo.batches(CUTOFF, 100))

    lines = [json.loads(line) for line in batch.payload.splitlines()]
    assert [(line["error_message"], line["duration_ms"]) for line in lines] == [
        (None, 1000), ("\\x00ff", 1000), (None, "\\x0a")]
    assert repo.delete_batch(batch, CUTOFF, record(batch)) is True
    assert count(url) == 0


def test_an_instant_in_another_layout_of_the_same_length_is_not_taken_as_stored(
    url: str, repo: OldLogsRepository
) -> None:
    """26 characters, a real date and time, yet not opsctl's layout: Python reads it."""
    insert_exports(url, [export_row(id=i, created_at=OLD) for i in (1, 2)])
    execute(url, "UPDATE export_logs SET expires_at = '2026-09-08 01:00:00.5+0100' "
                 "WHERE id = 1")
    execute(url, "UPDATE export_logs SET expires_at = '2026-09-08 01:00:00.12345Z' "
                 "WHERE id = 2")

    [batch] = list(repo.batches(CUTOFF, 100))

    first, second = batch.payload.splitlines()
    assert b'"expires_at":"2026-09-08T00:00:00.5+00:00"' in first
    assert b'"expires_at":"2026-09-08T01:00:00.12345+00:00"' in second
    assert repo.delete_batch(batch, CUTOFF, record(batch)) is True
