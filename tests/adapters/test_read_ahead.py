"""Batches read several at once on PostgreSQL: cut every ``size`` eligible rows, each read
kept inside its own id range, so rows removed or added meanwhile never make two batches
hand out the same row."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from support import execute_sql, export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.read_ahead import batch_ranges, read_ahead
from opsctl.adapters.db.tables import source_table

pytestmark = pytest.mark.postgres

CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)


def test_ranges_cut_every_size_eligible_rows_and_reads_stay_inside_them(pg_url: str) -> None:
    old, new = CUTOFF - timedelta(days=1), CUTOFF + timedelta(days=1)
    # ids 1..23, of which 5, 10 and 15 are newer than the cutoff
    insert_exports(pg_url, [export_row(id=i, created_at=new if i % 5 == 0 else old)
                            for i in range(1, 24)])
    db = Database(pg_url)
    table = source_table("export_logs", {})
    try:
        with db.connect() as conn:
            ranges = batch_ranges(conn, table, 6, after=2, upper=22, cutoff=CUTOFF)
        # eligible after 2 up to 22: 3,4,6,7,8,9 | 11,12,13,14,16,17 | 18,19,21,22
        assert ranges == [(2, 9), (9, 17), (17, 22)]
        # Meanwhile the application removes 12 and 13, and backdates 15 and 20.
        execute_sql(pg_url, "DELETE FROM export_logs WHERE id IN (12, 13)")
        execute_sql(pg_url, f"UPDATE export_logs SET created_at = '{old.isoformat()}' "
                        "WHERE id IN (15, 20)")
        batches = list(read_ahead(db, table, CUTOFF, 6, ranges, upper=22))
    finally:
        db.dispose()

    ids = [[json.loads(line)["id"] for line in b.payload.splitlines()] for b in batches]
    assert ids == [[3, 4, 6, 7, 8, 9], [11, 14, 15, 16, 17], [18, 19, 20, 21, 22]]
    assert [(b.first_id, b.last_id, b.rows) for b in batches] == [
        (3, 9, 6), (11, 17, 5), (18, 22, 5)]


def test_a_range_that_grew_past_size_leaves_the_rest_for_the_next_run(pg_url: str) -> None:
    old = CUTOFF - timedelta(days=1)
    insert_exports(pg_url, [export_row(id=i, created_at=old) for i in (1, 2, 3, 10, 11)])
    db = Database(pg_url)
    table = source_table("export_logs", {})
    try:
        with db.connect() as conn:
            ranges = batch_ranges(conn, table, 2, cutoff=CUTOFF)
        assert ranges == [(None, 2), (2, 10), (10, None)]
        insert_exports(pg_url, [export_row(id=i, created_at=old) for i in (4, 5)])
        batches = list(read_ahead(db, table, CUTOFF, 2, ranges))
    finally:
        db.dispose()

    assert [(b.first_id, b.last_id) for b in batches] == [(1, 2), (3, 4), (11, 11)]
