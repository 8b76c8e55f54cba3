"""The deletion guard's table size on PostgreSQL: exact below a million rows by the
planner's statistics, the statistics above, exact while the table was never analysed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import PARTITIONED_DDL, execute_sql, export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.old_logs import repository as old_logs
from opsctl.settings.data import SourceSettings

pytestmark = pytest.mark.postgres


def count_rows(url: str) -> int:
    repository = old_logs.OldLogsRepository(Database(url), SourceSettings())
    try:
        return repository.count_rows()
    finally:
        repository.close()
        repository.db.engine.dispose()


@pytest.mark.parametrize("partitioned", [False, True])
def test_statistics_answer_above_the_threshold_and_counts_below(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, partitioned: bool
) -> None:
    if partitioned:
        execute_sql(pg_url, PARTITIONED_DDL)
        execute_sql(pg_url, "CREATE TABLE p_a PARTITION OF export_logs FOR VALUES FROM "
                        "('2020-01-01') TO ('2026-01-01')")
        execute_sql(pg_url, "CREATE TABLE p_b PARTITION OF export_logs DEFAULT")
    stamps = [datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)]
    insert_exports(pg_url, [export_row(created_at=stamps[i % 2]) for i in range(20)])
    monkeypatch.setattr(old_logs, "ESTIMATED_ABOVE", 10)
    assert count_rows(pg_url) == 20  # never analysed: counted

    execute_sql(pg_url, "ANALYZE export_logs")
    insert_exports(pg_url, [export_row(created_at=stamps[0]) for _ in range(5)])
    assert count_rows(pg_url) == 20  # the statistics, not yet aware of the 5 new rows
    monkeypatch.setattr(old_logs, "ESTIMATED_ABOVE", 1_000_000)
    assert count_rows(pg_url) == 25  # below the threshold: exact
