"""SQLite: the survey at the start of a cleanup (poison rows, eligible count, highest
eligible id) in two cheap passes, exact whatever the ``created_at`` values hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support import export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.old_logs import OldLogsRepository
from opsctl.settings.data import SourceSettings

CUTOFF = datetime(2026, 10, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=3)
NEW = CUTOFF + timedelta(days=3)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'survey.db'}"


@pytest.fixture
def repo(url: str) -> Iterator[OldLogsRepository]:
    repository = OldLogsRepository(Database(url), SourceSettings())
    try:
        yield repository
    finally:
        repository.close()
        repository.db.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


def test_a_clean_table_needs_no_poison_search(url: str, repo: OldLogsRepository) -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD if i % 3 else NEW)
                         for i in range(1, 11)])

    assert repo.poison_rows(CUTOFF) == []
    assert (repo.count_eligible(CUTOFF), repo.upper_bound(CUTOFF)) == (7, 10)
    # Each surveyed figure serves once; asked again, it is counted afresh.
    execute(url, "DELETE FROM export_logs WHERE id = 10")
    assert (repo.count_eligible(CUTOFF), repo.upper_bound(CUTOFF)) == (6, 8)


def test_poison_and_zoned_instants_are_told_apart(url: str, repo: OldLogsRepository) -> None:
    insert_exports(url, [export_row(id=i, created_at=OLD) for i in range(1, 6)])
    execute(url, "UPDATE export_logs SET created_at = 1700000000 WHERE id = 2")
    execute(url, "UPDATE export_logs SET created_at = '2026-09-31 99:00:00' WHERE id = 3")
    # Sorts before the cutoff as text, yet is 2026-10-01 04:00 UTC: newer, not poison.
    execute(url, "UPDATE export_logs SET created_at = '2026-09-30 20:00:00-08:00' "
                 "WHERE id = 5")

    poison = repo.poison_rows(CUTOFF)

    assert [row.id for row in poison] == [2, 3]
    assert (repo.count_eligible(CUTOFF), repo.upper_bound(CUTOFF)) == (2, 4)


def test_a_survey_for_another_cutoff_is_not_reused(url: str, repo: OldLogsRepository) -> None:
    insert_exports(url, [export_row(id=1, created_at=OLD), export_row(id=2, created_at=NEW)])

    assert repo.poison_rows(CUTOFF) == []
    later = NEW + timedelta(days=1)
    assert (repo.count_eligible(later), repo.upper_bound(later)) == (2, 2)
