"""The rows of files cleanup on real SQLite and PostgreSQL: the walk in ``(expires_at, id)``
order visits every candidate once, ties and poison rows included, with or without the
pending index; on PostgreSQL the count and the batches are range scans of that index that
stop at the cutoff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, create_engine, text
from support import export_row, insert_exports

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.expired_exports import ExpiredExportsRepository
from opsctl.adapters.db.tables import source_indexes, source_table
from opsctl.ports import ExpiredExport
from opsctl.settings.data import SourceSettings

CUTOFF = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
INDEX = "ix_export_logs_expires_pending"


def repository(url: str) -> ExpiredExportsRepository:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return ExpiredExportsRepository(Database(url), SourceSettings())


def create_indexes(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for index in source_indexes(source_table("export_logs", {})):
            index.create(conn)
    engine.dispose()


def walk(repo: ExpiredExportsRepository, size: int) -> Iterator[list[ExpiredExport]]:
    after: ExpiredExport | None = None
    while rows := repo.batch(CUTOFF, after, size):
        yield rows
        after = rows[-1]


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "no-index"])
def test_the_walk_follows_expires_at_then_id_through_ties(db_url: str, indexed: bool) -> None:
    """Batches of 3 over groups of equal ``expires_at`` whose ids run against the time
    order: every candidate once, in ``(expires_at, id)`` order, a batch boundary inside a
    tie included; not due, already expired and file-less rows never appear."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # id 1..12: expires_at goes backwards in time as id grows, four rows per instant.
    due = [export_row(export_id=f"d{n}", file_path=f"d/{n}.json",
                      expires_at=CUTOFF - timedelta(hours=1 + (n - 1) // 4 * 24))
           for n in range(1, 13)]
    others = [
        export_row(export_id="at-cutoff", file_path="o/1.json", expires_at=CUTOFF),
        export_row(export_id="later", file_path="o/2.json",
                   expires_at=CUTOFF + timedelta(days=3)),
        export_row(export_id="done", file_path="o/3.json", status="expired",
                   expires_at=CUTOFF - timedelta(days=9)),
        export_row(export_id="no-file", file_path=None, expires_at=CUTOFF - timedelta(days=9)),
        export_row(export_id="empty", file_path="", expires_at=CUTOFF - timedelta(days=9)),
        export_row(export_id="no-expiry", file_path="o/4.json", expires_at=None),
    ]
    insert_exports(db_url, due + others)
    if indexed:
        create_indexes(db_url)
    with repository(db_url) as repo:
        assert repo.count(CUTOFF) == 12
        batches = [[row.export_id for row in rows] for rows in walk(repo, 3)]
    # Instants: d9-d12 earliest, then d5-d8, then d1-d4; ids ascending within each.
    assert batches == [["d9", "d10", "d11"], ["d12", "d5", "d6"], ["d7", "d8", "d1"],
                       ["d2", "d3", "d4"]]


def test_marked_rows_leave_the_walk(db_url: str) -> None:
    """What a run does: a batch, its rows marked, the next batch from the last one read."""
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    insert_exports(db_url, [
        export_row(export_id=f"e{n}", file_path=f"d/{n}.json",
                   expires_at=CUTOFF - timedelta(minutes=1 + n % 3)) for n in range(10)])
    create_indexes(db_url)
    seen: list[str] = []
    with repository(db_url) as repo:
        for rows in walk(repo, 4):
            seen += [row.export_id for row in rows]
            assert repo.mark_expired([row.id for row in rows[:-1]]) == len(rows) - 1
        assert sorted(seen) == sorted(f"e{n}" for n in range(10))
        assert len(seen) == 10
        # Every batch left its last row unmarked: those are the candidates now.
        assert repo.count(CUTOFF) == 3
        assert [r.export_id for r in repo.batch(CUTOFF, None, 10)] == [
            seen[3], seen[7], seen[9]]


def test_sqlite_walks_past_poison_rows_once(sqlite_url: str) -> None:
    """Values that are no timestamp (integer, real, garbage text, text that is not UTF-8)
    sort before the cutoff: each comes back once, reported, and the walk goes on."""
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    names = ["int", "real", "garbage", "not-utf8", "4h", "5h", "tie-a", "tie-b"]
    insert_exports(sqlite_url, [
        export_row(export_id=name, file_path=f"d/{name}.json",
                   expires_at=CUTOFF - timedelta(hours=n)) for n, name in enumerate(names)])
    create_indexes(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        for name, value in (("int", "1700000000"), ("real", "1.5"),
                            ("garbage", "'1970-garbage'"),
                            ("not-utf8", "CAST(X'31393730FF' AS TEXT)"),
                            ("tie-b", "(SELECT expires_at FROM export_logs "
                                      "WHERE export_id = 'tie-a')")):
            conn.execute(text(f"UPDATE export_logs SET expires_at = {value} "
                              "WHERE export_id = :e"), {"e": name})
        kinds = dict(conn.execute(text(
            "SELECT export_id, typeof(expires_at) FROM export_logs")).all())
    engine.dispose()
    assert (kinds["int"], kinds["real"], kinds["not-utf8"]) == ("integer", "real", "text")
    with repository(sqlite_url) as repo:
        assert repo.count(CUTOFF) == 8
        rows = [row for batch in walk(repo, 1) for row in batch]
    # Numbers sort before text; text by its bytes: 1970-garbage, 1970\xff, then the dates.
    assert [row.export_id for row in rows] == [
        "real", "int", "garbage", "not-utf8", "tie-a", "tie-b", "5h", "4h"]
    unreadable = {row.export_id: row.unreadable for row in rows if row.unreadable}
    assert sorted(unreadable) == ["garbage", "int", "not-utf8", "real"]
    assert "expires_at is integer" in (unreadable["int"] or "")
    assert "expires_at is real" in (unreadable["real"] or "")
    assert "expires_at is text that is not a timestamp" in (unreadable["not-utf8"] or "")


def test_sqlite_uses_the_pending_index(sqlite_url: str) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    insert_exports(sqlite_url, [export_row(file_path="d/1.json", expires_at=CUTOFF)])
    create_indexes(sqlite_url)
    with repository(sqlite_url) as repo:
        first = repo.batch(CUTOFF + timedelta(days=1), None, 10)
        for query in (repo.count_query(CUTOFF), repo.batch_query(CUTOFF, None, 10),
                      repo.batch_query(CUTOFF, first[0], 10)):
            plan = " | ".join(row[-1] for row in _sqlite_plan(sqlite_url, query))
            assert f"INDEX {INDEX} (expires_at<?)" in plan or \
                f"INDEX {INDEX} (expires_at>?" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # the index order is the walk's order


def _sqlite_plan(url: str, query: Select[Any]) -> list[Any]:
    engine = create_engine(url)
    compiled = query.compile(engine)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}",
                                    tuple(compiled.params[k] for k in compiled.positiontup or []
                                          )).all()
    engine.dispose()
    return rows


@pytest.mark.postgres
def test_postgres_count_and_batches_are_range_scans_that_stop_at_the_cutoff(
        pg_url: str) -> None:
    """20,000 rows pending but not due, 30 due, 20,000 already expired: the count and each
    batch read the pending index from where the walk is to the cutoff and no further."""
    insert_exports(pg_url, [])
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO export_logs (export_id, user_id, format, status, conversation_count,
                                     file_path, created_at, expires_at)
            SELECT 'e' || g, 'u', 'json',
                   CASE WHEN g <= 20000 THEN 'expired' ELSE 'completed' END, 1,
                   'd/' || g || '.json', :cutoff - interval '10 days',
                   CASE WHEN g <= 20000 THEN :cutoff - interval '5 days' + g * interval '1s'
                        WHEN g <= 20030 THEN :cutoff - interval '1 hour' + (g - 20000) * interval '1s'
                        ELSE :cutoff + g * interval '1s' END
            FROM generate_series(1, 40030) AS g"""), {"cutoff": CUTOFF})
    create_indexes(pg_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE export_logs"))
    engine.dispose()
    with repository(pg_url) as repo:
        assert repo.count(CUTOFF) == 30
        first = repo.batch(CUTOFF, None, 20)
        assert [row.export_id for row in first] == [f"e{g}" for g in range(20001, 20021)]
        rest = repo.batch(CUTOFF, first[-1], 20)
        assert [row.export_id for row in rest] == [f"e{g}" for g in range(20021, 20031)]
        for query, rows in ((repo.count_query(CUTOFF), 30),
                            (repo.batch_query(CUTOFF, None, 20), 20),
                            (repo.batch_query(CUTOFF, first[-1], 20), 10),
                            (repo.batch_query(CUTOFF - timedelta(days=1), None, 20), 0)):
            scan = _index_scan(pg_url, query)
            assert scan["Index Name"] == INDEX
            assert "expires_at <" in scan["Index Cond"]
            # Read exactly the due rows: nothing past the cutoff, nothing filtered out.
            assert (scan["Actual Rows"], scan.get("Rows Removed by Filter", 0)) == (rows, 0)
        resumed = _index_scan(pg_url, repo.batch_query(CUTOFF, first[-1], 20))
        assert "ROW(expires_at, id) >" in resumed["Index Cond"], resumed["Index Cond"]


def _index_scan(url: str, query: Select[Any]) -> dict[str, Any]:
    """The one scan of ``export_logs`` in the statement's EXPLAIN ANALYZE."""
    engine = create_engine(url)
    compiled = query.compile(engine)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}",
                                    compiled.params).scalar_one()
    engine.dispose()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans = []

    def visit(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "export_logs":
            scans.append(node)
        for child in node.get("Plans", []):
            visit(child)

    visit(plan[0]["Plan"])
    assert len(scans) == 1, plan
    assert scans[0]["Node Type"] in ("Index Scan", "Index Only Scan"), plan
    return scans[0]
