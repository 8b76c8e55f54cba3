"""The database check on the real SQLite and PostgreSQL, up and down."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from opsctl.adapters.checks.database import DatabaseProbe
from opsctl.adapters.db import migrations
from opsctl.adapters.db.database import Database
from opsctl.errors import DatabaseUnavailable
from opsctl.ports import CheckFinding


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_reachable_database_is_ok(db_url: str) -> None:
    db = Database(db_url)
    migrations.ensure_schema(db)
    db.dispose()

    finding = DatabaseProbe(db_url, connect_timeout_s=5).check(2.0)

    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    assert finding == CheckFinding(detail={"backend": backend})


def test_postgresql_on_a_closed_port_raises_database_unavailable() -> None:
    url = f"postgresql+psycopg://postgres:pw-secret@127.0.0.1:{closed_port()}/app"

    with pytest.raises(DatabaseUnavailable) as caught:
        DatabaseProbe(url, connect_timeout_s=5).check(2.0)

    assert caught.value.kind == "database_unavailable"
    assert "pw-secret" not in caught.value.message


def test_in_a_dry_run_a_missing_sqlite_file_is_critical_and_is_not_created(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "opsctl.db"

    finding = DatabaseProbe(f"sqlite:///{path}", 5, read_only=True).check(2.0)

    assert (finding.state, finding.error_kind) == ("critical", "not_found")
    assert finding.error_message == (
        f"SQLite database {path} does not exist yet (`opsctl db init` creates it)")
    assert not path.exists() and not path.parent.exists()


def test_otherwise_sqlite_is_opened_as_every_job_opens_it_creating_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "opsctl.db"

    finding = DatabaseProbe(f"sqlite:///{path}", 5, read_only=False).check(2.0)

    assert finding == CheckFinding(detail={"backend": "sqlite"})
    assert path.exists()


def test_a_sqlite_file_that_cannot_be_created_raises_database_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable):
        DatabaseProbe("sqlite:////proc/opsctl-no/opsctl.db", 5, read_only=False).check(2.0)
