"""PostgreSQL's held deletes on a real server: a batch deleted in a transaction left open
returns exactly the lines a read would, nobody sees it gone until the commit (which
catalogues it), a release leaves every row, and the spans cut the eligible rows as the
batches would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from support import (
    REMAPPED_COLUMNS,
    export_row,
    insert_exports,
    remapped_table_with_a_column_of_its_own,
)

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.migrations import ensure_schema
from opsctl.adapters.db.old_logs import OldLogsRepository
from opsctl.adapters.db.old_logs.held import HeldDeletes
from opsctl.ports import CatalogRecord, LogBatch
from opsctl.settings.data import SourceSettings

pytestmark = pytest.mark.postgres

CUTOFF = datetime(2026, 10, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=3)
NEW = CUTOFF + timedelta(days=3)
HOSTILE = ['q"uo\'te', "new\nline", "back\\slash\\n", "日本 🚀", "tab\tctrl\x01", ""]


@pytest.fixture
def repo(pg_url: str) -> Iterator[OldLogsRepository]:
    ensure_schema(Database(pg_url))
    repository = OldLogsRepository(Database(pg_url), SourceSettings())
    try:
        yield repository
    finally:
        repository.close()
        repository.db.dispose()


@pytest.fixture
def held(repo: OldLogsRepository) -> Iterator[HeldDeletes]:
    deletes = repo.held()
    try:
        yield deletes
    finally:
        deletes.close()


def seed(url: str, created: list[datetime]) -> None:
    insert_exports(url, [export_row(id=i + 1, created_at=at,
                                    error_message=HOSTILE[i % len(HOSTILE)])
                         for i, at in enumerate(created)])


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def ids(url: str) -> list[int]:
    return [row[0] for row in query(url, "SELECT id FROM export_logs ORDER BY id")]


def record(batch: LogBatch) -> CatalogRecord:
    return CatalogRecord("file:///a", f"t/{batch.first_id}.jsonl.gz", "export_logs",
                         batch.first_id, batch.last_id, batch.rows, 10, "0" * 64,
                         batch.min_created_at, batch.max_created_at, "run-1", CUTOFF)


def test_spans_cut_the_eligible_rows_like_the_batches(
    pg_url: str, repo: OldLogsRepository, held: HeldDeletes
) -> None:
    seed(pg_url, [OLD, NEW, OLD, OLD, OLD, NEW, OLD, NEW])  # eligible: 1, 3, 4, 5, 7

    assert list(held.spans(CUTOFF, 2)) == [(None, 3), (3, 5), (5, 7)]
    assert list(held.spans(CUTOFF, 5)) == [(None, 7)]
    assert [(b.first_id, b.last_id) for b in repo.batches(CUTOFF, 2)] == [(1, 3), (4, 5),
                                                                           (7, 7)]


def test_a_held_batch_holds_the_lines_a_read_gives_and_only_eligible_rows(
    pg_url: str, repo: OldLogsRepository, held: HeldDeletes
) -> None:
    seed(pg_url, [OLD, NEW, OLD, OLD + timedelta(microseconds=500_000), OLD, NEW])
    [read] = list(repo.batches(CUTOFF, 10))

    taken = held.take(CUTOFF, None, 6)

    assert taken is not None
    batch = taken.batch
    assert (batch.first_id, batch.last_id, batch.rows) == (1, 5, 4)
    assert batch.payload == read.payload  # the same bytes, hostile text included
    assert (batch.min_created_at, batch.max_created_at) == (
        OLD, OLD + timedelta(microseconds=500_000))
    taken.release()


def test_nobody_sees_a_held_batch_gone_until_its_commit_which_catalogues_it(
    pg_url: str, held: HeldDeletes
) -> None:
    seed(pg_url, [OLD, OLD, OLD, NEW])

    taken = held.take(CUTOFF, None, 2)
    assert taken is not None
    assert ids(pg_url) == [1, 2, 3, 4]  # another session still sees every row
    taken.commit(record(taken.batch))

    assert ids(pg_url) == [3, 4]
    assert query(pg_url, "SELECT key, first_id, last_id, rows FROM opsctl_archive_objects") == [
        ("t/1.jsonl.gz", 1, 2, 2)]


def test_a_released_batch_leaves_every_row_and_catalogues_nothing(
    pg_url: str, held: HeldDeletes
) -> None:
    seed(pg_url, [OLD, OLD, OLD])

    taken = held.take(CUTOFF, None, 3)
    assert taken is not None
    taken.release()
    taken.release()  # never raises

    assert ids(pg_url) == [1, 2, 3]
    assert query(pg_url, "SELECT count(*) FROM opsctl_archive_objects") == [(0,)]
    again = held.take(CUTOFF, None, 3)  # the connection is free for the next batch
    assert again is not None and again.batch.rows == 3
    again.release()


def test_an_empty_span_holds_nothing(pg_url: str, held: HeldDeletes) -> None:
    seed(pg_url, [NEW, NEW])

    assert held.take(CUTOFF, None, 2) is None
    assert ids(pg_url) == [1, 2]


def test_a_row_changed_before_the_delete_is_archived_in_the_version_deleted(
    pg_url: str, held: HeldDeletes
) -> None:
    seed(pg_url, [OLD, OLD])
    engine = create_engine(pg_url)
    try:
        with engine.connect() as app:
            app.execute(text("UPDATE export_logs SET error_message = 'NEW VERSION' "
                             "WHERE id = 2"))
            taken: list[Any] = []
            deleting = threading.Thread(target=lambda: taken.append(
                held.take(CUTOFF, None, 2)))
            deleting.start()  # waits for the application's row lock
            deleting.join(0.5)
            assert deleting.is_alive()
            app.commit()
            deleting.join(10)
    finally:
        engine.dispose()

    [batch] = [t.batch for t in taken]
    assert batch.rows == 2 and b'"error_message":"NEW VERSION"' in batch.payload
    taken[0].release()


def test_two_threads_hold_two_batches_at_once(pg_url: str, held: HeldDeletes) -> None:
    seed(pg_url, [OLD] * 6)
    results: dict[str, Any] = {}
    both_held = threading.Barrier(2, timeout=10)

    def lane(label: str, after: int | None, last: int) -> None:
        taken = held.take(CUTOFF, after, last)
        assert taken is not None
        both_held.wait()  # each thread's transaction is open at the same time
        taken.commit(record(taken.batch))
        results[label] = (taken.batch.first_id, taken.batch.last_id)

    lanes = [threading.Thread(target=lane, args=("a", None, 3)),
             threading.Thread(target=lane, args=("b", 3, 6))]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join(20)

    assert results == {"a": (1, 3), "b": (4, 6)}
    assert ids(pg_url) == []


def test_remapped_and_unknown_columns_are_archived_under_their_real_names(pg_url: str) -> None:
    from opsctl.settings.data import SourceColumns

    remapped_table_with_a_column_of_its_own(pg_url, OLD)
    ensure_schema(Database(pg_url))
    repo = OldLogsRepository(Database(pg_url), SourceSettings(
        table="audit_exports", columns=SourceColumns(**REMAPPED_COLUMNS)))
    deletes = repo.held()
    try:
        [(after, last)] = list(deletes.spans(CUTOFF, 10))
        taken = deletes.take(CUTOFF, after, last)
        assert taken is not None
        row = json.loads(taken.batch.payload)
        assert list(row) == [
            "log_id", "export_id", "user_id", "format", "status", "conversation_count",
            "duration_ms", "file_size_bytes", "file_path", "error_type", "error_message",
            "inserted_at", "expires_at", "region",
        ]
        assert (row["log_id"], row["region"], row["user_id"]) == (5, "eu-west-1", "u")
        assert row["inserted_at"] == "2026-09-28T00:00:00+00:00"
        taken.commit(record(taken.batch))
    finally:
        deletes.close()
        repo.close()
        repo.db.dispose()

    assert query(pg_url, "SELECT count(*) FROM audit_exports") == [(0,)]
