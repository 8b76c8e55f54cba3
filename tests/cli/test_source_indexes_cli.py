"""``opsctl db init --source-indexes`` through the real entry point, on SQLite and
PostgreSQL: the recommended indexes printed, created (CONCURRENTLY on PostgreSQL),
found present the second time, and an invalid leftover rebuilt."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from support import Cli, database_snapshot, export_row, insert_exports

from opsctl.adapters.db.database import Database

NAMES = ["ix_export_logs_created_at_id", "ix_export_logs_expires_pending"]


def seed(url: str) -> None:
    Database(url).engine.dispose()  # creates the SQLite directory
    insert_exports(url, [export_row()])  # creates the table without any index


def indexes(url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {ix["name"]: ix for ix in inspect(conn).get_indexes("export_logs")}
    finally:
        engine.dispose()


def test_dry_run_prints_the_statements_and_creates_nothing(cli: Cli, db_url: str) -> None:
    seed(db_url)
    assert cli("db", "init").exit_code == 0
    before = database_snapshot(db_url)
    result = cli("db", "init", "--source-indexes", "--dry-run")
    assert result.exit_code == 0, result.stdout
    listed = result.one("db_init")["source_indexes"]
    assert [(i["name"], i["state"]) for i in listed] == [(n, "missing") for n in NAMES]
    pending = listed[1]["statement"]
    assert "(expires_at, id)" in pending
    assert "WHERE status != 'expired' AND file_path IS NOT NULL AND file_path != ''" in pending
    concurrently = "CONCURRENTLY " if db_url.startswith("postgresql") else ""
    assert pending.startswith(f"CREATE INDEX {concurrently}IF NOT EXISTS")
    assert database_snapshot(db_url) == before
    assert indexes(db_url) == {}


def test_creates_once_then_finds_them_present(cli: Cli, db_url: str) -> None:
    seed(db_url)
    first = cli("db", "init", "--source-indexes")
    assert first.exit_code == 0, first.stdout
    assert [i["state"] for i in first.one("db_init")["source_indexes"]] == ["created"] * 2
    made = indexes(db_url)
    assert sorted(made) == NAMES
    assert made["ix_export_logs_expires_pending"]["column_names"] == ["expires_at", "id"]
    # The id in the created_at index: a cleanup's count and bound read the index alone.
    assert made["ix_export_logs_created_at_id"]["column_names"] == ["created_at", "id"]
    second = cli("db", "init", "--source-indexes").one("db_init")
    assert [i["state"] for i in second["source_indexes"]] == ["present"] * 2
    assert "0 source index(es) created" in second["message"]


@pytest.mark.postgres
def test_an_invalid_index_left_by_a_failed_build_is_rebuilt(cli: Cli, pg_url: str) -> None:
    seed(pg_url)
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE INDEX ix_export_logs_created_at_id "
                              "ON export_logs (created_at, id)"))
            conn.execute(text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
                              "'ix_export_logs_created_at_id'::regclass"))
    finally:
        engine.dispose()
    states = cli("db", "init", "--source-indexes", env={"OPSCTL_DATABASE__URL": pg_url}).one(
        "db_init")["source_indexes"]
    assert [(i["name"], i["state"]) for i in states] == [
        ("ix_export_logs_created_at_id", "rebuilt"),
        ("ix_export_logs_expires_pending", "created")]
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text(
                "SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'export_logs'::regclass"
            )).scalar_one() is True
    finally:
        engine.dispose()


def test_a_missing_source_table_exits_3(cli: Cli, db_url: str) -> None:
    Database(db_url).engine.dispose()
    result = cli("db", "init", "--source-indexes")
    assert result.exit_code == 3
    assert "export_logs does not exist" in result.one("error")["error"]["message"]


def test_text_output_lists_the_statements_verbatim(cli: Cli, db_url: str) -> None:
    seed(db_url)
    result = cli("db", "init", "--source-indexes", "--dry-run", output="text")
    assert result.exit_code == 0, result.stderr
    assert "WHERE status != 'expired' AND file_path IS NOT NULL AND file_path != '';" in result.stdout
