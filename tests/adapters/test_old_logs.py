"""The export-log repository on real SQLite and PostgreSQL: statistics, batched deletes,
and the JSON lines of archive batches (identical on both backends, text exactly as stored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text
from support import (
    REMAPPED_COLUMNS,
    export_row,
    insert_exports,
    remapped_table_with_a_column_of_its_own,
)

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.migrations import ensure_schema
from opsctl.adapters.db.old_logs import OldLogsRepository
from opsctl.adapters.db.tables import source_table
from opsctl.errors import SourceSchemaError
from opsctl.ports import CatalogRecord, LogBatch
from opsctl.settings.data import SourceColumns, SourceSettings

CUTOFF = datetime(2026, 10, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=3)
NEW = CUTOFF + timedelta(days=3)

HOSTILE = [
    'quotes " and \' and `',
    "new\nline, carriage\rreturn, tab\there",
    "back\\slash, \\n as two characters, \\\\ two backslashes, trailing \\",
    "unicode: é ü ß 日本語 🚀 \u2028 line separator, \u00a0 nbsp",
    "control \x01\x1f and DEL \x7f",
    '{"looks": "like json"}\\t',
]


def repository(url: str, **source: Any) -> Iterator[OldLogsRepository]:
    ensure_schema(Database(url))  # the archive catalog
    repo = OldLogsRepository(Database(url), SourceSettings(**source))
    try:
        yield repo
    finally:
        repo.close()
        repo.db.dispose()


@pytest.fixture
def db_url(db_url: str) -> str:
    """The parametrised database, with the SQLite file's directory in place."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return db_url


@pytest.fixture
def sqlite_url(sqlite_url: str) -> str:
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return sqlite_url


@pytest.fixture
def repo(db_url: str) -> Iterator[OldLogsRepository]:
    yield from repository(db_url)


def remaining_ids(url: str, table: str = "export_logs") -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()


def record(batch: LogBatch, key: str = "t/o.jsonl.gz") -> CatalogRecord:
    return CatalogRecord("file:///a", key, "export_logs", batch.first_id, batch.last_id,
                         batch.rows, 10, "0" * 64, batch.min_created_at, batch.max_created_at,
                         "run-1", CUTOFF)


def catalogued(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(
                "SELECT key, first_id, last_id, rows FROM opsctl_archive_objects ORDER BY id"))]
    finally:
        engine.dispose()


def seed(url: str, created: list[datetime], **overrides: Any) -> None:
    insert_exports(url, [export_row(id=i + 1, created_at=at, **overrides)
                         for i, at in enumerate(created)])


def test_stats_count_rows_and_bound_created_at(db_url: str, repo: OldLogsRepository) -> None:
    oldest = datetime(2026, 9, 2, 7, 15, 30, 250000, tzinfo=UTC)
    newest = datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)
    seed(db_url, [NEW, oldest, OLD, newest, OLD, CUTOFF])

    stats = repo.stats(CUTOFF)

    assert (stats.total_rows, stats.eligible) == (6, 3)  # CUTOFF itself is not older
    assert stats.oldest_created_at == oldest
    assert stats.newest_created_at == newest


def test_stats_of_an_empty_table(db_url: str, repo: OldLogsRepository) -> None:
    insert_exports(db_url, [])

    stats = repo.stats(CUTOFF)

    assert (stats.total_rows, stats.eligible, stats.oldest_created_at,
            stats.newest_created_at) == (0, 0, None, None)


def test_a_missing_table_is_a_source_error(db_url: str, repo: OldLogsRepository) -> None:
    insert_exports(db_url, [], table="something_else")

    with pytest.raises(SourceSchemaError, match=r"\[source\] table"):
        repo.stats(CUTOFF)


def test_a_missing_column_in_a_batch_query_is_a_source_error(db_url: str) -> None:
    seed(db_url, [OLD, OLD])

    for repo in repository(db_url, columns=SourceColumns(id="no_such_column")):
        with pytest.raises(SourceSchemaError, match="no_such_column"):
            next(repo.batches(CUTOFF, 10))
        with pytest.raises(SourceSchemaError, match="no_such_column"):
            next(repo.delete_batches(CUTOFF, 10))
    assert remaining_ids(db_url) == [1, 2]


def test_delete_batches_walks_eligible_rows_by_id(db_url: str, repo: OldLogsRepository) -> None:
    # ids 1..9; 4 and 7 are recent and must survive; created_at is not monotonic in id.
    seed(db_url, [OLD, OLD, OLD, NEW, OLD, OLD, NEW, OLD, OLD])

    assert repo.count_eligible(CUTOFF) == 7
    counts = []
    for deleted in repo.delete_batches(CUTOFF, 3):
        counts.append((deleted, remaining_ids(db_url)))

    assert counts == [(3, [4, 5, 6, 7, 8, 9]), (3, [4, 7, 9]), (1, [4, 7])]
    assert list(repo.delete_batches(CUTOFF, 3)) == []


def test_delete_batches_leaves_nothing_in_flight_when_closed(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD] * 10)

    batches = repo.delete_batches(CUTOFF, 4)
    assert next(batches) == 4
    batches.close()

    assert remaining_ids(db_url) == [5, 6, 7, 8, 9, 10]


def test_delete_batches_never_delete_a_row_made_newer_after_its_batch_was_picked(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD] * 6)
    table = source_table("export_logs", {})
    engine = create_engine(db_url)
    walk = repo.delete_batches(CUTOFF, 2)
    try:
        # The next batch (3, 4) is picked while this one is deleted, on another
        # connection; the application then makes row 3 recent before its delete.
        assert next(walk) == 2
        with engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == 3).values(created_at=NEW))
        assert list(walk) == [1, 2]
    finally:
        engine.dispose()
    assert remaining_ids(db_url) == [3]


def test_a_batch_holds_every_column_as_one_json_line_per_row(
    db_url: str, repo: OldLogsRepository
) -> None:
    created = datetime(2026, 9, 1, 8, 0, 0, 500000, tzinfo=UTC)
    insert_exports(db_url, [
        export_row(id=7, export_id="7f0c5f6e-0000-4000-8000-000000000007", user_id="u-7",
                   format="csv", status="failed", conversation_count=3, duration_ms=None,
                   file_size_bytes=9_000_000_000, file_path="a/b.csv",
                   error_type="timeout", error_message="took too long",
                   created_at=created, expires_at=datetime(2026, 9, 8, tzinfo=UTC)),
        export_row(id=9, created_at=NEW),
    ])

    [batch] = list(repo.batches(CUTOFF, 10))

    assert (batch.first_id, batch.last_id, batch.rows) == (7, 7, 1)
    assert (batch.min_created_at, batch.max_created_at) == (created, created)
    assert batch.payload == (
        b'{"id":7,"export_id":"7f0c5f6e-0000-4000-8000-000000000007","user_id":"u-7",'
        b'"format":"csv","status":"failed","conversation_count":3,"duration_ms":null,'
        b'"file_size_bytes":9000000000,"file_path":"a/b.csv","error_type":"timeout",'
        b'"error_message":"took too long","created_at":"2026-09-01T08:00:00.5+00:00",'
        b'"expires_at":"2026-09-08T00:00:00+00:00"}\n'
    )


def test_hostile_text_survives_the_round_trip(db_url: str, repo: OldLogsRepository) -> None:
    insert_exports(db_url, [export_row(id=i + 1, created_at=OLD, error_message=value,
                                       user_id=value, file_path=value)
                            for i, value in enumerate(HOSTILE)])

    [batch] = list(repo.batches(CUTOFF, 100))

    lines = batch.payload.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(HOSTILE) + 1
    decoded = [json.loads(line) for line in lines[:-1]]
    assert [row["error_message"] for row in decoded] == HOSTILE
    assert [row["user_id"] for row in decoded] == HOSTILE
    assert [row["file_path"] for row in decoded] == HOSTILE


@pytest.mark.postgres
def test_both_backends_write_the_same_bytes(sqlite_url: str, pg_url: str) -> None:
    rows = [export_row(id=i + 1, created_at=OLD + timedelta(microseconds=i * 120_000),
                       error_message=value, expires_at=None if i % 2 else NEW)
            for i, value in enumerate(HOSTILE)]
    payloads = []
    for url in (sqlite_url, pg_url):
        insert_exports(url, rows)
        for repo in repository(url):
            payloads.append(b"".join(batch.payload for batch in repo.batches(CUTOFF, 4)))

    assert payloads[0] == payloads[1]
    assert payloads[0].count(b"\n") == len(HOSTILE)


def test_batches_follow_ids_and_end_on_a_short_batch(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD, NEW, OLD, OLD, OLD, NEW, OLD])  # eligible: 1, 3, 4, 5, 7

    batches = [(b.first_id, b.last_id, b.rows) for b in repo.batches(CUTOFF, 2)]
    after = [(b.first_id, b.last_id) for b in repo.batches(CUTOFF, 2, after_id=4)]

    assert batches == [(1, 3, 2), (4, 5, 2), (7, 7, 1)]
    assert after == [(5, 7)]


def test_delete_batch_removes_exactly_the_archived_rows(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD, OLD, NEW, OLD, OLD])
    first = next(repo.batches(CUTOFF, 3))  # rows 1, 2, 4

    assert repo.delete_batch(first, CUTOFF, record(first)) is True
    assert remaining_ids(db_url) == [3, 5]
    assert catalogued(db_url) == [("t/o.jsonl.gz", 1, 4, 3)]


@pytest.mark.parametrize("change", ["content", "created_at", "deleted", "same_values"])
def test_delete_batch_refuses_when_a_row_changed_since_the_read(
    db_url: str, repo: OldLogsRepository, change: str
) -> None:
    seed(db_url, [OLD, OLD, OLD])
    batch = next(repo.batches(CUTOFF, 10))
    table = source_table("export_logs", {})
    statement = {
        "content": table.update().values(error_message="CHANGED-AFTER-READ"),
        "created_at": table.update().values(created_at=NEW),
        "deleted": table.delete(),
        # On PostgreSQL even an UPDATE that writes the same values makes a new version.
        "same_values": table.update().values(status="completed"),
    }[change].where(table.c.id == 2)
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(statement)
    engine.dispose()

    deleted = repo.delete_batch(batch, CUTOFF, record(batch))

    if change == "same_values" and db_url.startswith("sqlite"):
        assert deleted is True  # the same lines: nothing that was archived differs
        return
    assert deleted is False
    assert remaining_ids(db_url) == ([1, 3] if change == "deleted" else [1, 2, 3])
    assert catalogued(db_url) == []


def test_delete_batch_refuses_when_a_row_appeared_in_its_range(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD, NEW, OLD])
    batch = next(repo.batches(CUTOFF, 10))  # rows 1 and 3
    engine = create_engine(db_url)
    table = source_table("export_logs", {})
    with engine.begin() as conn:  # an old row committed late, inside the batch's range
        conn.execute(table.update().where(table.c.id == 2).values(created_at=OLD))
    engine.dispose()

    assert repo.delete_batch(batch, CUTOFF, record(batch)) is False
    assert remaining_ids(db_url) == [1, 2, 3]


def test_sqlite_compares_lines_only_once_another_connection_has_committed(
    sqlite_url: str,
) -> None:
    seed(sqlite_url, [OLD, OLD, OLD, OLD, NEW])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for repo in repository(sqlite_url):
        first, second = list(repo.batches(CUTOFF, 2))  # both read before any delete
        event.listen(repo.db.engine, "before_cursor_execute", seen)
        # Only this run's connection wrote since the reads: the range is as archived.
        assert repo.delete_batch(first, CUTOFF, record(first, "t/1.jsonl.gz")) is True
        assert not [s for s in statements if "json_object" in s]
        engine = create_engine(sqlite_url)
        table = source_table("export_logs", {})
        with engine.begin() as conn:  # another writer, on a row outside the batch
            conn.execute(table.update().where(table.c.id == 5).values(status="failed"))
        engine.dispose()

        assert repo.delete_batch(second, CUTOFF, record(second, "t/2.jsonl.gz")) is True
        assert [s for s in statements if "json_object" in s]  # compared, found the same
    assert remaining_ids(sqlite_url) == [5]
    assert catalogued(sqlite_url) == [("t/1.jsonl.gz", 1, 2, 2), ("t/2.jsonl.gz", 3, 4, 2)]


def archived_rows(repo: OldLogsRepository) -> dict[int, dict[str, Any]]:
    rows = {}
    for batch in repo.batches(CUTOFF, 2000):
        rows.update({line["id"]: line for line in map(json.loads, batch.payload.splitlines())})
    return rows


def test_settle_archived_deletes_rows_still_as_archived_and_catalogues(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD] * 1203, error_message="é \\ \"q\"")
    rows = archived_rows(repo)
    del rows[1], rows[1202], rows[1203]
    rows[5000] = {"id": 5000}  # archived, then deleted by someone else: fine

    settled = repo.settle_archived(rows, CUTOFF, record(next(repo.batches(CUTOFF, 1))))

    assert (settled.deleted, list(settled.stale)) == (1200, [])
    assert remaining_ids(db_url) == [1, 1202, 1203]
    assert catalogued(db_url) == [("t/o.jsonl.gz", 1, 1, 1)]


@pytest.mark.parametrize("change", ["content", "created_at"])
def test_settle_archived_does_nothing_when_a_row_changed(
    db_url: str, repo: OldLogsRepository, change: str
) -> None:
    seed(db_url, [OLD, OLD, OLD])
    rows = archived_rows(repo)
    values = {"error_message": "UPDATED AFTER KILL"} if change == "content" else {
        "created_at": NEW}
    table = source_table("export_logs", {})
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == 2).values(**values))
    engine.dispose()

    settled = repo.settle_archived(rows, CUTOFF, record(next(repo.batches(CUTOFF, 1))))

    assert (settled.deleted, list(settled.stale)) == (0, [2])
    assert remaining_ids(db_url) == [1, 2, 3]
    assert catalogued(db_url) == []


def test_remapped_and_unknown_columns_are_archived_under_their_real_names(
    db_url: str,
) -> None:
    remapped_table_with_a_column_of_its_own(db_url, OLD)

    for repo in repository(db_url, table="audit_exports",
                           columns=SourceColumns(**REMAPPED_COLUMNS)):
        [batch] = list(repo.batches(CUTOFF, 10))
        row = json.loads(batch.payload)
        assert list(row) == [
            "log_id", "export_id", "user_id", "format", "status", "conversation_count",
            "duration_ms", "file_size_bytes", "file_path", "error_type", "error_message",
            "inserted_at", "expires_at", "region",
        ]
        assert (row["log_id"], row["region"], row["user_id"]) == (5, "eu-west-1", "u")
        assert row["inserted_at"] == "2026-09-28T00:00:00+00:00"
        assert repo.delete_batch(batch, CUTOFF, record(batch)) is True

    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(text("count(*)")).select_from(
            text("audit_exports"))).scalar_one() == 0
    engine.dispose()


def test_the_upper_bound_is_the_highest_eligible_id_whatever_the_order(
    db_url: str, repo: OldLogsRepository
) -> None:
    # ids 1..8; 6 was inserted late with an old created_at, 7 and 8 are new.
    seed(db_url, [OLD, OLD, NEW, OLD, NEW, OLD - timedelta(days=30), NEW, NEW])
    assert repo.upper_bound(CUTOFF) == 6
    assert repo.upper_bound(OLD - timedelta(days=60)) is None


def test_batches_stop_at_the_bound_taken_when_the_run_starts(
    db_url: str, repo: OldLogsRepository
) -> None:
    seed(db_url, [OLD, NEW, OLD, NEW, NEW])  # eligible: 1, 3
    walk = repo.delete_batches(CUTOFF, 1)
    assert next(walk) == 1
    # A backdated row inserted above the bound during the run waits for the next run.
    insert_exports(db_url, [export_row(id=6, created_at=OLD)])
    assert list(walk) == [1]
    assert remaining_ids(db_url) == [2, 4, 5, 6]
    assert list(repo.delete_batches(CUTOFF, 1)) == [1]
    reads = [(b.first_id, b.last_id) for b in repo.batches(CUTOFF, 5)]
    assert reads == []
    insert_exports(db_url, [export_row(id=7, created_at=OLD)])
    assert [(b.first_id, b.last_id) for b in repo.batches(CUTOFF, 5)] == [(7, 7)]
