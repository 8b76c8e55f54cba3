"""Shared test helpers: crafted export rows, a CLI runner on the real entry point."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, inspect, text

from opsctl.adapters.db.tables import source_table
from opsctl.cli.main import main

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def export_row(**overrides: Any) -> dict[str, Any]:
    """One export row with sensible defaults; override any contract column."""
    row: dict[str, Any] = {
        "export_id": str(uuid.uuid4()),
        "user_id": "user-1",
        "format": "json",
        "status": "completed",
        "conversation_count": 10,
        "duration_ms": 1000,
        "file_size_bytes": 1000,
        "file_path": None,
        "error_type": None,
        "error_message": None,
        "created_at": T0,
        "expires_at": None,
    }
    row.update(overrides)
    return row


def insert_exports(
    url: str,
    rows: Iterable[Mapping[str, Any]],
    table: str = "export_logs",
    columns: Mapping[str, str] | None = None,
) -> None:
    """Create the source table when missing and insert ``rows`` (via SQLAlchemy, no mocks)."""
    engine = create_engine(url)
    try:
        tbl = source_table(table, columns or {})
        with engine.begin() as conn:
            if not inspect(conn).has_table(tbl.name, schema=tbl.schema):
                tbl.create(conn)
            batch = [dict(r) for r in rows]
            if batch:
                conn.execute(insert(tbl), batch)
    finally:
        engine.dispose()


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type_]

    def one(self, type_: str) -> dict[str, Any]:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_!r} event, got {len(found)}: {self.stdout}"
        return found[0]


@dataclass
class Cli:
    """Runs ``opsctl`` in-process through ``main()`` with an isolated environment."""

    env: dict[str, str]

    def __call__(self, *args: str, env: Mapping[str, str] | None = None,
                 output: str | None = "json") -> CliResult:
        argv = ([f"--output={output}"] if output else []) + list(args)
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, environ={**self.env, **(env or {})}, stdout=out, stderr=err)
        stdout = out.getvalue()
        events = []
        if output == "json":
            events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        return CliResult(code, stdout, err.getvalue(), events)


def isolated_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PATH": "/usr/bin:/bin",
    }
    if database_url:
        env["OPSCTL_DATABASE__URL"] = database_url
    return env


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def database_snapshot(url: str) -> Any:
    """Every table and row, to prove a run wrote nothing.

    SQLite: the database file byte for byte (a read-only connection to a WAL database may
    leave an empty -wal and an -shm index; empty, they hold no data). PostgreSQL: every row
    with its xmin, so even a write of the same values shows.
    """
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        files = {p.name: p.read_bytes() for p in path.parent.glob(path.name + "*")
                 if not p.name.endswith("-shm")}
        return {name: data for name, data in files.items() if data or name == path.name}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            return {name: conn.execute(text(
                f'SELECT xmin::text, t::text FROM "{name}" t ORDER BY t::text')).all()
                for name in names}
    finally:
        engine.dispose()


class Victim:
    """A second real PostgreSQL connection whose backend a sql check's query tries to
    terminate: it tells whether the query really ran."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.conn = self.engine.connect()
        self.pid = int(self.conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    def alive(self) -> bool:
        try:
            return int(self.conn.execute(text("SELECT 1")).scalar_one()) == 1
        except Exception:
            return False

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def terminate(pid: int) -> str:
    """A one-number sql check query with a side effect: it ends backend ``pid``."""
    return f"SELECT count(*) FROM (SELECT pg_terminate_backend({pid})) AS t"


# The contract's table, partitioned by RANGE on created_at (the primary key must hold the
# partition key); the tests add the partitions they need.
PARTITIONED_DDL = """
CREATE TABLE export_logs (
  id bigserial, export_id varchar(36) NOT NULL, user_id text NOT NULL,
  format varchar(32) NOT NULL, status varchar(32) NOT NULL,
  conversation_count integer NOT NULL DEFAULT 0, duration_ms integer,
  file_size_bytes bigint, file_path text, error_type text, error_message text,
  created_at timestamptz NOT NULL, expires_at timestamptz,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at)
"""


def execute_sql(url: str, *statements: str) -> None:
    """Run statements, each committed on its own (DDL, ANALYZE, the application's writes)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


# The source table with its id and created_at columns renamed (``[source.columns]``).
REMAPPED_COLUMNS = {"id": "log_id", "created_at": "inserted_at"}


def remapped_table_with_a_column_of_its_own(url: str, created_at: datetime) -> None:
    """``audit_exports`` with ``REMAPPED_COLUMNS``, one row (id 5, ``created_at``) and a
    column opsctl does not know (``region``): an archive keeps every column under its
    real name."""
    insert_exports(url, [export_row(id=5, created_at=created_at, user_id="u")],
                   table="audit_exports", columns=REMAPPED_COLUMNS)
    execute_sql(url, "ALTER TABLE audit_exports ADD COLUMN region TEXT",
                "UPDATE audit_exports SET region = 'eu-west-1'")


def archived_lines(directory: Path) -> list[dict[str, Any]]:
    """Every row of every archive object in ``directory``, in object-name order."""
    import gzip

    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        rows += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return rows


def start_logs_cleanup(home: Path, url: str, *args: str,
                       env: Mapping[str, str] | None = None) -> Any:
    """``opsctl logs cleanup`` as a real process (JSON output, piped), for signals and
    ``kill -9``; the deletion guard's fraction is off, since nearly every row is old."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**isolated_env(home, url), "PYTHONPATH": str(repo), "PYTHONUNBUFFERED": "1",
           "OPSCTL_LOGS__MAX_DELETE_FRACTION": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "opsctl", "--output", "json", "logs", "cleanup", *args],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
