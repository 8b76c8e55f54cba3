"""The database layer on real SQLite files and the real PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.adapters.db.runs import DbBookkeeping
from opsctl.errors import DatabaseUnavailable, LockHeld, OperationTimeout
from opsctl.ports import RunRecord


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ensure_schema_creates_every_table_once_and_is_idempotent(db_url: str) -> None:
    db = Database(db_url)
    assert migrations.ensure_schema(db) == [1, 2]
    assert migrations.ensure_schema(db) == []
    with db.connect() as conn:
        names = set(inspect(conn).get_table_names())
        versions = conn.execute(select(tables.schema_version.c.version)).scalars().all()
    assert {"opsctl_runs", "opsctl_alert_state", "opsctl_metric_rollups",
            "opsctl_archive_objects", "opsctl_schema_version"} <= names
    assert versions == [1, 2]


def test_a_version_1_database_gains_the_archive_catalog(db_url: str) -> None:
    db = Database(db_url)
    with db.begin() as conn:
        for table in tables.opsctl_metadata.sorted_tables:
            if table is not tables.archive_objects:
                table.create(conn)
        conn.execute(tables.schema_version.insert().values(
            version=1, applied_at=datetime(2026, 1, 1, tzinfo=UTC)))
    assert migrations.ensure_schema(db) == [2]
    with db.connect() as conn:
        assert inspect(conn).has_table("opsctl_archive_objects")
        applied = dict(conn.execute(select(tables.schema_version.c.version,
                                           tables.schema_version.c.applied_at)).all())
    # The creation time of the tables stays that of version 1.
    assert applied[1] == datetime(2026, 1, 1, tzinfo=UTC)


def test_default_sqlite_file_and_directory_are_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / "opsctl.db"
    migrations.ensure_schema(Database(f"sqlite:///{path}"))
    assert path.is_file()


def test_run_history_round_trip_and_retention(db_url: str) -> None:
    db = Database(db_url)
    books = DbBookkeeping(db)
    books.ensure_schema()
    now = datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)
    for age_days in (100, 91, 89, 0):
        finished = now - timedelta(days=age_days)
        books.record_run(RunRecord("logs.cleanup", str(uuid.uuid4()), "h", finished, finished,
                                   "ok", 0, 12, {"deleted_count": age_days, "text": "é\n\"q\""}))
    assert books.prune_runs(now - timedelta(days=90)) == 2
    with db.connect() as conn:
        rows = conn.execute(select(tables.runs).order_by(tables.runs.c.finished_at)).all()
    assert [r.summary["deleted_count"] for r in rows] == [89, 0]
    assert rows[-1].finished_at == now and rows[-1].summary["text"] == "é\n\"q\""


@pytest.mark.postgres
def test_unreachable_postgres_is_database_unavailable_within_the_timeout() -> None:
    url = f"postgresql+psycopg://app:pw-s3cr3t@127.0.0.1:{closed_port()}/db"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as info, Database(url, connect_timeout_s=1).connect():
        pass
    assert time.monotonic() - started < 5
    assert "pw-s3cr3t" not in str(info.value)
    assert "127.0.0.1" in str(info.value)


@pytest.mark.postgres
def test_statement_timeout_is_an_operation_timeout(pg_url: str) -> None:
    db = Database(pg_url, statement_timeout_s=0.2)
    with pytest.raises(OperationTimeout, match=r"statement_timeout_s"), db.connect() as conn:
        conn.execute(text("SELECT pg_sleep(3)"))


@pytest.mark.postgres
def test_read_only_postgres_refuses_writes(pg_url: str) -> None:
    migrations.ensure_schema(Database(pg_url))
    db = Database(pg_url, read_only=True)
    with pytest.raises(DatabaseUnavailable, match=r"read-only"), db.begin() as conn:
        conn.execute(tables.alert_state.insert().values(name="x", state="open",
                                                        updated_at=datetime.now(UTC)))
    with Database(pg_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.alert_state)).scalar() == 0


def test_read_only_sqlite_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(DatabaseUnavailable, match="does not exist"), \
            Database(f"sqlite:///{path}", read_only=True).connect():
        pass
    assert not path.exists() and not path.parent.joinpath("missing.db-wal").exists()


def test_read_only_sqlite_refuses_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    migrations.ensure_schema(Database(url))
    before = (tmp_path / "o.db").read_bytes()
    with pytest.raises(DatabaseUnavailable, match=r"readonly|read-only|query_only"), \
            Database(url, read_only=True).begin() as conn:
        conn.execute(tables.alert_state.insert().values(name="x", state="open",
                                                        updated_at=datetime.now(UTC)))
    assert (tmp_path / "o.db").read_bytes() == before


HOLDER = textwrap.dedent("""
    import sys, time
    from opsctl.adapters.db.database import Database
    from opsctl.adapters.db.runs import DbBookkeeping
    with DbBookkeeping(Database(sys.argv[1])).job_lock("logs.cleanup"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_lock_is_exclusive_across_processes_and_freed_by_kill_9(db_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        books = DbBookkeeping(Database(db_url))
        with pytest.raises(LockHeld, match=r"logs\.cleanup"), books.job_lock("logs.cleanup"):
            pass
        with books.job_lock("files.cleanup"):  # other jobs are not blocked
            pass
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 10
        while True:
            try:
                with books.job_lock("logs.cleanup"):
                    break
            except LockHeld:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_concurrent_first_runs_create_the_schema_once(db_url: str) -> None:
    probe = ("import sys\nfrom opsctl.adapters.db import migrations\n"
             "from opsctl.adapters.db.database import Database\n"
             "print(migrations.ensure_schema(Database(sys.argv[1])))\n")
    procs = [subprocess.Popen([sys.executable, "-c", probe, db_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], outputs
    applied = sorted(out.strip() for out, _ in outputs)
    assert applied == ["[1, 2]", "[]", "[]", "[]"]
    with Database(db_url).connect() as conn:
        assert conn.execute(select(tables.schema_version.c.version)).scalars().all() == [1, 2]


@pytest.mark.postgres
def test_a_pooled_connection_goes_back_with_its_session_settings_reset(pg_url: str) -> None:
    from opsctl.adapters.db.locks import job_lock

    db = Database(pg_url, pooled=True)
    try:
        with job_lock(db, "test.job"):
            with db.connect() as conn:
                conn.execute(text("SET synchronous_commit TO OFF"))
                conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
            with db.connect() as conn:
                # the same session (one pooled connection), its settings back to the start
                assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
                assert conn.execute(text("SHOW statement_timeout")).scalar_one() != "0"
                held = conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid()")).scalar_one()
                assert held == 1  # RESET ALL left the run's advisory lock alone
    finally:
        db.dispose()
