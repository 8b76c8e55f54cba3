"""``opsctl demo seed`` through the real entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from support import Cli, isolated_env

STATUSES = ("queued", "processing", "completed", "failed", "expired")


def storage_root(home: Path) -> Path:
    return home / "data" / "opsctl" / "exports"  # isolated_env's XDG_DATA_HOME


def query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def table_rows(url: str, table: str = "export_logs") -> int | None:
    """Rows in ``table``; None when it does not exist."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table):
                return None
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def files_on_disk(root: Path) -> dict[str, int]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_seed_fills_table_and_storage_consistently(cli: Cli, db_url: str, home: Path) -> None:
    result = cli("demo", "seed", "--rows", "3000", "--seed", "5")
    assert result.exit_code == 0, result.stdout + result.stderr
    event = result.one("demo_seeded")
    root = storage_root(home)
    assert (event["state"], event["exit_code"], event["level"]) == ("ok", 0, "info")
    assert (event["job"], event["dry_run"], event["seed"], event["days"]) == (
        "demo.seed", False, 5, 45)
    assert (event["table"], event["table_created"], event["rows"]) == ("export_logs", True, 3000)
    assert event["storage_root"] == str(root)
    assert "status" not in event

    in_db = dict(query(db_url, "SELECT status, count(*) FROM export_logs GROUP BY status"))
    assert event["by_status"] == {s: in_db.get(s, 0) for s in STATUSES}
    assert sum(event["by_status"].values()) == 3000
    assert 0.05 <= event["by_status"]["failed"] / 3000 <= 0.15
    assert query(db_url, "SELECT min(id), max(id), count(DISTINCT export_id) "
                         "FROM export_logs")[0] == (1, 3000, 3000)

    engine = create_engine(db_url)
    try:
        names = {ix["name"] for ix in inspect(engine).get_indexes("export_logs")}
    finally:
        engine.dispose()
    assert {"ix_export_logs_created_at_id", "ix_export_logs_expires_pending"} <= names

    rows = query(db_url, "SELECT status, file_path, file_size_bytes, expires_at "
                         "FROM export_logs WHERE file_path IS NOT NULL")
    on_disk = files_on_disk(root)
    assert len(on_disk) == event["files_written"] > 0
    now = datetime.now(UTC)
    by_key = {r.file_path: r for r in rows}
    for key, size in on_disk.items():
        assert by_key[key].status == "completed" and by_key[key].file_size_bytes == size
    for row in rows:
        expires = _aware(row.expires_at)
        if row.status == "expired":
            assert row.file_path not in on_disk and expires < now - timedelta(days=2)
        elif expires > now:
            assert row.file_path in on_disk
    # Work for files cleanup: expired files still on disk, and some already gone.
    overdue = [r for r in rows if r.status == "completed" and _aware(r.expires_at) < now]
    assert any(r.file_path in on_disk for r in overdue)
    assert any(r.file_path not in on_disk for r in overdue)
    old = query(db_url, "SELECT count(*) FROM export_logs WHERE created_at < "
                + _sql_time(db_url, now - timedelta(days=30)))[0][0]
    assert old > 0


def test_a_second_run_appends_and_truncate_replaces(cli: Cli, db_url: str) -> None:
    assert cli("demo", "seed", "--rows", "500", "--no-files").exit_code == 0
    assert cli("demo", "seed", "--rows", "700", "--no-files").one("demo_seeded")[
        "table_created"] is False
    assert query(db_url, "SELECT count(*), count(DISTINCT export_id) FROM export_logs")[0] == (
        1200, 1200)
    event = cli("demo", "seed", "--rows", "300", "--no-files", "--truncate").one("demo_seeded")
    assert (event["truncated"], event["rows_removed"], event["rows"]) == (True, 1200, 300)
    assert query(db_url, "SELECT count(*), min(id) FROM export_logs")[0] == (300, 1)


def test_same_seed_gives_the_same_rows(cli: Cli, db_url: str) -> None:
    sql = "SELECT export_id, user_id, format, conversation_count FROM export_logs ORDER BY id"
    cli("demo", "seed", "--rows", "400", "--seed", "77", "--no-files")
    first = query(db_url, sql)
    cli("demo", "seed", "--rows", "400", "--seed", "77", "--no-files", "--truncate")
    assert query(db_url, sql) == first
    cli("demo", "seed", "--rows", "400", "--seed", "78", "--no-files", "--truncate")
    assert query(db_url, sql) != first


@pytest.mark.parametrize("how", [["--dry-run"], []])
def test_dry_run_writes_nothing(cli: Cli, db_url: str, home: Path, how: list[str]) -> None:
    env = {} if how else {"OPSCTL_DRY_RUN": "1"}
    result = cli("demo", "seed", "--rows", "800", "--seed", "3", *how, env=env)
    assert result.exit_code == 0, result.stdout
    event = result.one("demo_seeded")
    assert (event["dry_run"], event["rows"], event["table_created"]) == (True, 800, True)
    assert event["files_written"] > 0  # would write
    assert not storage_root(home).exists()
    if db_url.startswith("sqlite"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
    else:
        assert query(db_url, "SELECT to_regclass('export_logs'), to_regclass('opsctl_runs')"
                     )[0] == (None, None)


def test_seeding_leaves_no_run_history_but_creates_opsctl_tables(cli: Cli, db_url: str) -> None:
    assert cli("demo", "seed", "--rows", "50", "--no-files").exit_code == 0
    assert query(db_url, "SELECT count(*) FROM opsctl_runs")[0][0] == 0


def test_remapped_table_and_columns(cli: Cli, db_url: str, home: Path) -> None:
    env = {"OPSCTL_SOURCE__TABLE": "exports_demo",
           "OPSCTL_SOURCE__COLUMNS__CREATED_AT": "inserted_at",
           "OPSCTL_SOURCE__COLUMNS__FILE_PATH": "object_key"}
    event = cli("demo", "seed", "--rows", "600", env=env).one("demo_seeded")
    assert (event["table"], event["exit_code"]) == ("exports_demo", 0)
    assert query(db_url, "SELECT count(*), count(object_key) FROM exports_demo "
                         "WHERE inserted_at IS NOT NULL")[0][0] == 600
    assert len(files_on_disk(storage_root(home))) == event["files_written"]


@pytest.mark.parametrize("args", [["--rows", "0"], ["--rows", "abc"], ["--days", "0"],
                                  ["--seed", "-1"], ["--bogus"]])
def test_bad_flags_exit_64(cli: Cli, args: list[str]) -> None:
    result = cli("demo", "seed", *args)
    assert result.exit_code == 64
    event = result.one("error")
    assert (event["error"]["kind"], event["exit_code"]) == ("usage", 64)


def test_s3_storage_needs_no_files(cli: Cli, home: Path, db_url: str) -> None:
    env = {"OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": "exports"}
    result = cli("demo", "seed", "--rows", "10", env=env)
    assert result.exit_code == 64
    assert "--no-files" in result.one("error")["error"]["message"]
    assert cli("demo", "seed", "--rows", "10", "--no-files", env=env).exit_code == 0


def test_rows_the_database_refuses_exit_3_and_leave_nothing(
    cli: Cli, db_url: str, home: Path,
) -> None:
    from sqlalchemy import CheckConstraint

    from opsctl.adapters.db.tables import source_table

    table = source_table("export_logs", {})
    table.append_constraint(CheckConstraint("conversation_count < 5", name="tiny_exports"))
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    engine = create_engine(db_url)
    try:
        table.create(engine)
    finally:
        engine.dispose()
    result = cli("demo", "seed", "--rows", "2000", "--seed", "1")
    assert result.exit_code == 3
    event = result.one("error")
    assert (event["error"]["kind"], event["exit_code"]) == ("database_unavailable", 3)
    assert "tiny_exports" in event["error"]["message"]
    assert "Traceback" not in result.stdout + result.stderr
    assert table_rows(db_url) == 0


def test_an_unwritable_storage_root_exits_3_and_commits_no_rows(
    cli: Cli, db_url: str, home: Path,
) -> None:
    blocker = home / "not-a-directory"
    blocker.write_text("")
    result = cli("demo", "seed", "--rows", "2000",
                 env={"OPSCTL_STORAGE__ROOT": str(blocker / "exports")})
    assert result.exit_code == 3
    event = result.one("error")
    assert (event["error"]["kind"], event["exit_code"]) == ("storage_unavailable", 3)
    assert table_rows(db_url) is None  # the table it created went with the rolled-back rows


@pytest.mark.slow
def test_sigterm_keeps_the_chunks_written_and_still_prints_the_summary(
    home: Path, sqlite_url: str,
) -> None:
    root = storage_root(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsctl", "--output", "json", "demo", "seed", "--rows",
         "2000000", "--seed", "1"], env=isolated_env(home, sqlite_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not root.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first files mean the first chunk is in
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143
    event = json.loads(out.splitlines()[-1])
    assert (event["type"], event["state"], event["exit_code"]) == ("demo_seeded",
                                                                  "interrupted", 143)
    assert 0 < event["rows"] < 2_000_000
    assert table_rows(sqlite_url) == event["rows"]
    assert len(files_on_disk(root)) == event["files_written"]


def test_text_output_is_a_table(cli: Cli) -> None:
    result = cli("demo", "seed", "--rows", "100", "--seed", "1", "--no-files", output="text")
    assert result.exit_code == 0
    assert "seeded 100 exports into export_logs" in result.stdout
    assert "--seed 1 repeats" in result.stdout and "{" not in result.stdout


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sql_time(url: str, moment: datetime) -> str:
    if url.startswith("sqlite"):  # stored as naive UTC text
        return f"'{moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}'"
    return f"'{moment.isoformat()}'::timestamptz"
