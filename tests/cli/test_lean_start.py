"""What a run costs before its work: the modules it imports (in a fresh interpreter, per
kind of command), the database connections it opens and the statements of its schema
check. Cron pays these on every run of every small job."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from support import Cli, export_row, insert_exports, isolated_env
from typer.main import get_command

from opsctl.adapters.db import migrations
from opsctl.adapters.db.database import Database
from opsctl.cli.app import GROUPS, app

RICH = ("rich",)
HTTP = ("httpx", "boto3", "botocore")
POSTGRES = ("psycopg", "sqlalchemy.dialects.postgresql")
SQLITE = ("sqlalchemy.dialects.sqlite",)


def imported(env: dict[str, str], *args: str) -> tuple[int, set[str]]:
    """Run opsctl in a fresh interpreter; its exit code and every module it imported."""
    probe = (
        "import io, json, sys\n"
        "from opsctl.cli.main import main\n"
        "import os\n"
        f"code = main({list(args)!r}, environ=dict(os.environ), stdout=io.StringIO(),"
        " stderr=io.StringIO())\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True)
    code, modules = json.loads(done.stdout.strip().splitlines()[-1])
    return code, set(modules)


def loaded(modules: set[str], *names: str) -> list[str]:
    return sorted(n for n in names if n in modules)


@pytest.fixture
def seeded(home: Path, db_url: str) -> dict[str, str]:
    Database(db_url).engine.dispose()  # creates the SQLite directory
    insert_exports(db_url, [export_row()])
    env = isolated_env(home, db_url)
    (home / "files").mkdir()
    return {**env, "PYTHONPATH": ":".join(sys.path), "OPSCTL_STORAGE__ROOT": str(home / "files")}


def other_backend(db_url: str) -> tuple[str, ...]:
    return SQLITE if db_url.startswith("postgresql") else POSTGRES


# What `--version` and `--help` may import: the CLI's skeleton, not one command module, not
# the settings, not the database, storage, HTTP or rendering libraries.
NOT_AT_START = ("opsctl.cli.commands", "opsctl.settings", "opsctl.adapters", "opsctl.jobs",
                "sqlalchemy", "psycopg", "pydantic_settings", "rich", "boto3", "botocore",
                "httpx", "jinja2", "croniter", "prometheus_client", "pythonjsonlogger")


@pytest.mark.parametrize("args", [("--version",), ("--help",)], ids=" ".join)
def test_version_and_help_import_no_command_nor_library(home: Path, args: tuple[str, ...]
                                                         ) -> None:
    env = {**isolated_env(home), "PYTHONPATH": ":".join(sys.path), "COLUMNS": "100"}
    code, modules = imported(env, *args)
    assert code == 0
    assert sorted(m for m in modules if m.startswith(NOT_AT_START)) == []


@pytest.mark.parametrize(("words", "expected"), [
    ("opsctl ", list(GROUPS)), ("opsctl fi", ["files"]), ("opsctl --ver", ["--version"]),
], ids=["commands", "prefix", "option"])
def test_completing_a_command_name_imports_no_command_module(
    home: Path, words: str, expected: list[str]
) -> None:
    env = {**isolated_env(home), "PYTHONPATH": ":".join(sys.path), "_OPSCTL_COMPLETE":
           "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "1"}
    probe = (
        "import io, sys\n"
        "from opsctl.cli.main import main\n"
        "try:\n"
        "    main([], stderr=io.StringIO())\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.split() == expected
    assert sorted(m for m in done.stderr.split() if m.startswith(NOT_AT_START)) == []


def test_the_help_lists_every_command_with_its_own_summary(home: Path) -> None:
    # The listing is built without importing the commands, so it can fail if it drifts.
    env = {**isolated_env(home), "PYTHONPATH": ":".join(sys.path), "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-m", "opsctl", "--help"], capture_output=True,
                          text=True, env=env, check=True)
    listed = done.stdout.split("Commands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines()] == list(GROUPS)
    assert "  status        One screen for on-call: per job the last run and whether...\n" \
        in listed
    root = get_command(app)
    for name, (_, summary) in GROUPS.items():
        command = root.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.help is not None
        assert " ".join(command.help.split()).startswith(summary), name


@pytest.mark.parametrize(
    "args",
    [
        ("failure-rate", "check", "--window", "60m"),
        ("metrics", "aggregate", "--window", "1h"),
        ("metrics", "aggregate", "--store", "--backfill", "2h"),
        ("logs", "cleanup", "--dry-run"),
        ("logs", "stats"),
        ("files", "cleanup", "--dry-run"),
        ("runs", "stats"),
        ("db", "init"),
        ("status",),
        ("schedule", "show"),
        ("metrics", "report"),
        ("runs", "list"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_json_run_imports_neither_rich_nor_what_its_configuration_does_not_use(
    seeded: dict[str, str], db_url: str, args: tuple[str, ...]
) -> None:
    code, modules = imported(seeded, "--output", "json", *args)
    assert code in (0, 1, 2), code
    # files cleanup's batch query still builds a PostgreSQL ARRAY type on either backend
    backend = () if args[0] == "files" else other_backend(db_url)
    assert loaded(modules, *RICH, *HTTP, *backend) == []


def test_a_health_probe_of_the_database_imports_no_http_client(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "health.toml"
    config.write_text('[[health.checks]]\nname = "db"\nkind = "database"\n', encoding="utf-8")
    code, modules = imported(seeded, "--output", "json", "--config", str(config),
                             "health", "probe")
    assert code == 0
    assert loaded(modules, *RICH, *HTTP) == []


def test_a_run_writing_a_prometheus_textfile_imports_no_http_client(
    seeded: dict[str, str], tmp_path: Path
) -> None:
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    env = {**seeded, "OPSCTL_PROMETHEUS__TEXTFILE_DIR": str(textfiles)}
    code, modules = imported(env, "--output", "json", "failure-rate", "check")
    assert code in (0, 1)
    assert [p.name for p in textfiles.iterdir()] == ["opsctl_failure_rate_check.prom"]
    assert loaded(modules, *RICH, *HTTP, "prometheus_client", "urllib.request",
                  "http.client") == []


def test_config_validate_imports_no_database_layer(seeded: dict[str, str]) -> None:
    code, modules = imported(seeded, "--output", "json", "config", "validate")
    assert code == 0
    assert loaded(modules, *RICH, *HTTP, "sqlalchemy") == []


def test_text_mode_does_import_rich(seeded: dict[str, str]) -> None:
    # The check above can fail: the same run for people draws with rich.
    code, modules = imported(seeded, "--output", "text", "failure-rate", "check")
    assert code in (0, 1) and "rich" in modules


@pytest.fixture
def connections() -> Iterator[list[Any]]:
    opened: list[Any] = []

    def count(dbapi_connection: Any, _record: Any) -> None:
        opened.append(dbapi_connection)

    event.listen(Engine, "connect", count)
    try:
        yield opened
    finally:
        event.remove(Engine, "connect", count)


def test_a_job_and_its_lock_and_bookkeeping_share_one_connection(
    cli: Cli, db_url: str, connections: list[Any]
) -> None:
    Database(db_url).engine.dispose()
    recent = datetime.now(UTC) - timedelta(minutes=5)
    insert_exports(db_url, [export_row(status="failed", error_type="x", created_at=recent)
                            for _ in range(2)])
    assert cli("db", "init").exit_code == 0
    connections.clear()
    result = cli("failure-rate", "check", "--window", "60m", "--min-samples", "1")
    assert result.exit_code == 2, result.stdout  # alert: state saved, run recorded
    assert len(connections) == 1


def test_a_current_schema_costs_one_statement(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert migrations.ensure_schema(db) == list(range(1, migrations.LATEST + 1))
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        assert migrations.ensure_schema(db) == []
        assert len(statements) == 1, statements
    finally:
        db.dispose()


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Path]:
    """The PostgreSQL protocol messages of every connection opened, traced by libpq."""
    trace = tmp_path / "wire.txt"
    files: list[Any] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        from psycopg import pq

        handle = trace.open("a")
        files.append(handle)
        dbapi_connection.pgconn.trace(handle.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    event.listen(Engine, "connect", on_connect)
    try:
        yield trace
    finally:
        event.remove(Engine, "connect", on_connect)
        for handle in files:
            handle.close()


@pytest.mark.postgres
def test_a_check_on_postgresql_waits_for_no_empty_transaction(
    home: Path, pg_url: str, wire: Path
) -> None:
    # Every round trip is a wait on a busy host. The schema check, the lock, the count,
    # the alert-state lookup and save, the unlock, the run record and the prune each stand
    # alone: no BEGIN/COMMIT around them, and no hstore lookup by the dialect.
    recent = datetime.now(UTC) - timedelta(minutes=5)
    insert_exports(pg_url, [export_row(status="failed", error_type="x", created_at=recent)
                            for _ in range(2)])
    cli = Cli(isolated_env(home, pg_url))
    assert cli("db", "init").exit_code == 0
    wire.write_text("")

    result = cli("failure-rate", "check", "--window", "60m", "--min-samples", "1")

    assert result.exit_code == 2, result.stdout  # alert: the state row is written too
    sent = [line.split("\t") for line in wire.read_text().splitlines()]
    queries = [fields[-1].strip() for fields in sent
               if fields[0] == "F" and fields[2] in ("Query", "Parse")]
    begins = [q for q in queries if q.strip('"').startswith("BEGIN")]
    assert len(begins) == 1, queries  # the dialect's own probe of a new connection
    assert not any("SAVEPOINT" in q or "hstore" in q for q in queries), queries
    standalone = ("pg_try_advisory_lock", "max(opsctl_schema_version.version)",
                  "FROM export_logs", "FROM opsctl_alert_state", "pg_advisory_unlock")
    for i, query in enumerate(queries):
        if any(mark in query for mark in standalone):
            assert not queries[i - 1].strip('"').startswith("BEGIN"), queries[i - 1:i + 1]
    # and what they wrote is there, committed
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT job, exit_code FROM opsctl_runs WHERE job = "
                                     "'failure-rate.check'")).all() == [("failure-rate.check", 2)]
            assert conn.execute(text("SELECT state FROM opsctl_alert_state")).scalar() == "open"
    finally:
        engine.dispose()


def collector_after(env: dict[str, str], *args: str, deferred: bool = True) -> list[Any]:
    """Exit code, whether collection is on and whether start-up's objects were frozen,
    after one command in a fresh interpreter started the way the real entry point does."""
    probe = (
        "import gc, io, json, os\n"
        "from opsctl.cli import startup\n"
        "from opsctl.cli.main import main\n"
        + ("startup.defer_collection()\n" if deferred else "")
        + f"code = main({list(args)!r}, environ=dict(os.environ), stdout=io.StringIO(),"
        " stderr=io.StringIO())\n"
        "print(json.dumps([code, gc.isenabled(), gc.get_freeze_count() > 0]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True)
    result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("args", [
    ("failure-rate", "check"), ("status",), ("demo", "seed", "--rows", "5", "--dry-run"),
    ("logs", "stats"),
], ids=" ".join)
def test_collection_is_off_while_starting_and_back_on_for_the_work(
    seeded: dict[str, str], args: tuple[str, ...]
) -> None:
    # A job's own garbage is collected as usual; only start-up's objects are set aside.
    code, enabled, frozen = collector_after(seeded, "--output", "json", *args)
    assert code in (0, 1), code
    assert (enabled, frozen) == (True, True)


def test_main_called_in_process_leaves_the_collector_alone(seeded: dict[str, str]) -> None:
    assert collector_after(seeded, "--output", "json", "failure-rate", "check",
                           deferred=False)[1:] == [True, False]
    # and a command that never starts work (the version) ends with collection still off
    assert collector_after(seeded, "--version")[1:] == [False, False]
