"""The sql check on the real PostgreSQL as a least-privileged role: ``[health] sql_role``
and the refusal to run as a superuser, with queries READ ONLY does not stop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import Victim, export_row, insert_exports, terminate

from opsctl.adapters.checks.sql import SqlProbe
from opsctl.ports import CheckFinding
from opsctl.settings.health import SqlCheck

pytestmark = pytest.mark.postgres

COUNT = "SELECT count(*) FROM export_logs"


@dataclass(frozen=True)
class Roles:
    admin_url: str  # the test server's superuser login
    login_url: str  # a plain login role, member of `reader`
    login: str
    reader: str  # NOLOGIN; the only role allowed to read export_logs


@pytest.fixture
def roles(pg_url: str) -> Iterator[Roles]:
    """Roles are cluster-wide: unique names, dropped (with their grants) afterwards."""
    tag = uuid.uuid4().hex[:8]
    login, reader = f"opsctl_login_{tag}", f"opsctl_reader_{tag}"
    insert_exports(pg_url, [export_row() for _ in range(3)])
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        # NOINHERIT: the login holds the reader's privileges only after SET ROLE.
        conn.execute(text(f"CREATE ROLE {login} LOGIN NOSUPERUSER NOINHERIT"))
        conn.execute(text(f"CREATE ROLE {reader} NOLOGIN NOSUPERUSER"))
        conn.execute(text(f"GRANT {reader} TO {login}"))
        conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA public TO {login}, {reader}"))
        conn.execute(text(f"GRANT SELECT ON export_logs TO {reader}"))
    login_url = make_url(pg_url).set(username=login).render_as_string(hide_password=False)
    try:
        yield Roles(pg_url, login_url, login, reader)
    finally:
        with engine.begin() as conn:
            for role in (login, reader):
                conn.execute(text(f"DROP OWNED BY {role}"))
            for role in (login, reader):
                conn.execute(text(f"DROP ROLE {role}"))
        engine.dispose()


def probe(url: str, query: str = COUNT, role: str | None = None,
          allow_superuser: bool = False) -> SqlProbe:
    check = SqlCheck(name="q", kind="sql", query=query, critical=False)
    return SqlProbe(url, 5, check.query, check.judge, check.warning, check.critical_threshold,
                    role=role, allow_superuser=allow_superuser)


def test_a_superuser_login_is_refused_and_its_query_never_runs(roles: Roles) -> None:
    victim = Victim(roles.admin_url)
    try:
        for role in (None, roles.reader):  # SET ROLE is no limit for a superuser login
            finding = probe(roles.admin_url, terminate(victim.pid), role=role).check(5.0)
            assert (finding.state, finding.error_kind) == ("critical", "superuser_refused")
            assert finding.error_message is not None
            assert "allow_superuser" in finding.error_message
            assert "postgres" in finding.error_message
            assert victim.alive()
    finally:
        victim.close()


def test_allow_superuser_lets_a_superuser_run_the_check(roles: Roles) -> None:
    finding = probe(roles.admin_url, allow_superuser=True).check(5.0)
    assert finding == CheckFinding(detail={"value": 3.0, "warning": None, "critical": None})


def test_sql_role_runs_the_query_with_that_roles_privileges_only(roles: Roles) -> None:
    # Only the role may read the table: the login alone is denied.
    plain = probe(roles.login_url).check(5.0)
    assert (plain.state, plain.error_kind) == ("critical", "query_failed")
    assert plain.error_message is not None and "permission denied" in plain.error_message
    as_role = probe(roles.login_url, role=roles.reader).check(5.0)
    assert as_role.state == "ok" and as_role.detail["value"] == 3.0
    who = probe(roles.login_url, f"SELECT (current_user = '{roles.reader}')::int",
                role=roles.reader).check(5.0)
    assert who.detail["value"] == 1.0


def test_sql_role_stops_what_read_only_does_not(roles: Roles) -> None:
    # Without the role, the login may terminate its own backends; as the reader, it may not.
    victim = Victim(roles.login_url)
    try:
        finding = probe(roles.login_url, terminate(victim.pid), role=roles.reader).check(5.0)
        assert (finding.state, finding.error_kind) == ("critical", "query_failed")
        assert finding.error_message is not None and "must be a member" in finding.error_message
        assert victim.alive()
        assert probe(roles.login_url, terminate(victim.pid)).check(5.0).state == "ok"
        assert not victim.alive()
    finally:
        victim.close()


def test_a_query_that_sets_its_role_back_fails_the_check(roles: Roles) -> None:
    query = "SELECT length(set_config('role', 'none', true))"
    finding = probe(roles.login_url, query, role=roles.reader).check(5.0)
    assert (finding.state, finding.error_kind) == ("critical", "role_changed")


def test_a_role_that_cannot_be_set_fails_the_check(roles: Roles) -> None:
    finding = probe(roles.login_url, role="opsctl_no_such_role").check(5.0)
    assert (finding.state, finding.error_kind) == ("critical", "role_failed")
    assert finding.error_message is not None and "opsctl_no_such_role" in finding.error_message
