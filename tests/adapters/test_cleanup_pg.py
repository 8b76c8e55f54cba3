"""PostgreSQL's delete-only cleanup: the survey at the start (the eligible count and the
highest eligible id in one statement, exact with the recommended ``(created_at, id)``
index and with only the ``(created_at)`` index earlier versions recommended), and batch
deletes that commit durably."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql
from support import export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.old_logs import OldLogsRepository
from opsctl.adapters.db.old_logs.statements import BatchStatements
from opsctl.adapters.db.tables import source_table
from opsctl.errors import SourceSchemaError
from opsctl.settings.data import SourceSettings

pytestmark = pytest.mark.postgres

CUTOFF = datetime(2026, 10, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=3)
NEW = CUTOFF + timedelta(days=3)

INDEXES = {
    "recommended": "CREATE INDEX ix_export_logs_created_at_id ON export_logs (created_at, id)",
    "created_at only": "CREATE INDEX ix_export_logs_created_at ON export_logs (created_at)",
}


def execute(url: str, *statements: str) -> list[str]:
    """Run the statements in one transaction; the last one's rows, as text."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows: list[str] = []
            for statement in statements:
                result = conn.execute(text(statement))
                rows = [str(row[0]) for row in result] if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


@pytest.fixture(params=list(INDEXES))
def indexed(request: pytest.FixtureRequest, pg_url: str) -> str:
    """A table whose eligible ids are 1, 3, 6 and 7 (6 inserted late, backdated), with
    one of the two indexes."""
    insert_exports(pg_url, [export_row(id=i, created_at=at) for i, at in enumerate(
        [OLD, NEW, OLD, NEW, NEW, OLD - timedelta(days=30), OLD, NEW, NEW], start=1)])
    execute(pg_url, INDEXES[request.param], "ANALYZE export_logs")
    return pg_url


@pytest.fixture
def repo(indexed: str) -> Iterator[OldLogsRepository]:
    repository = OldLogsRepository(Database(indexed), SourceSettings())
    try:
        yield repository
    finally:
        repository.close()
        repository.db.dispose()


def test_the_count_brings_the_bound_of_the_same_moment(
    indexed: str, repo: OldLogsRepository
) -> None:
    assert repo.count_eligible(CUTOFF) == 4
    # A backdated row above the bound after the survey waits for the next run: the bound
    # is the survey's, not asked again.
    insert_exports(indexed, [export_row(id=10, created_at=OLD)])
    assert repo.upper_bound(CUTOFF) == 7
    # Used once; asked again, it is taken afresh.
    assert repo.upper_bound(CUTOFF) == 10
    assert list(repo.delete_batches(CUTOFF, 2)) == [2, 2, 1]
    assert execute(indexed, "SELECT id FROM export_logs ORDER BY id") == [
        "2", "4", "5", "8", "9"]


def test_a_survey_for_another_cutoff_is_not_reused(repo: OldLogsRepository) -> None:
    assert repo.count_eligible(CUTOFF) == 4
    assert repo.upper_bound(OLD - timedelta(days=60)) is None
    assert repo.count_eligible(OLD - timedelta(days=60)) == 0
    assert repo.upper_bound(OLD - timedelta(days=60)) is None
    assert repo.upper_bound(CUTOFF) == 7


def test_with_the_recommended_index_the_survey_reads_the_index_alone(indexed: str) -> None:
    survey = BatchStatements(source_table("export_logs", {}), sqlite=False).survey
    query = str(survey.params(cutoff=CUTOFF).compile(dialect=postgresql.dialect(),
                               compile_kwargs={"literal_binds": True}))
    plan = "\n".join(execute(indexed, "SET LOCAL enable_seqscan TO off",
                             "SET LOCAL enable_bitmapscan TO off", f"EXPLAIN {query}"))
    if "ix_export_logs_created_at_id" in plan:
        assert "Index Only Scan using ix_export_logs_created_at_id" in plan, plan
    else:  # the older index: every eligible row fetched for its id, still one scan
        assert "Index Scan using ix_export_logs_created_at " in plan, plan


def test_every_batch_delete_commits_durably(indexed: str, repo: OldLogsRepository) -> None:
    """A deleted count is of rows that stay deleted after a server crash: no batch is
    committed without waiting for its WAL flush."""
    settings: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM export_logs"):
            with cursor.connection.cursor() as own:
                own.execute("SHOW synchronous_commit")
                settings.append(own.fetchone()[0])

    event.listen(repo.db.engine, "after_cursor_execute", after)
    assert list(repo.delete_batches(CUTOFF, 1)) == [1, 1, 1, 1]
    assert settings == ["on"] * 4


def test_a_table_gone_during_the_walk_is_a_source_error(indexed: str) -> None:
    insert_exports(indexed, [export_row(id=i, created_at=OLD) for i in range(10, 20)])
    repository = OldLogsRepository(Database(indexed), SourceSettings())
    try:
        walk = repository.delete_batches(CUTOFF, 4)
        assert next(walk) == 4
        execute(indexed, "DROP TABLE export_logs")
        with pytest.raises(SourceSchemaError, match=r"\[source\] table"):
            next(walk)
    finally:
        repository.close()
        repository.db.dispose()
