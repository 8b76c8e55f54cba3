"""The ``sql`` check: a query returning one number, judged against warning and critical.

A health check's query is configuration, and configuration gets copied, edited and
mistyped; it must not be able to harm the database it watches. So:

* it runs on a read-only connection in a READ ONLY transaction (PostgreSQL), or on a
  read-only SQLite connection with ``query_only`` on: a ``DELETE`` fails the check;
* it is sent as ONE statement (PostgreSQL's extended protocol, sqlite3's single-statement
  execute), so ``SELECT 1; COMMIT; SET ... ; DELETE ...`` cannot step out of the
  transaction;
* it has a statement timeout (PostgreSQL ``statement_timeout``, a SQLite progress handler),
  so a slow query fails the check instead of piling up behind every probe.

READ ONLY does not stop everything, though: as a superuser ``pg_terminate_backend(...)``,
``COPY ... TO '/file'`` and ``COPY ... TO PROGRAM`` all run. So on PostgreSQL:

* with ``[health] sql_role`` the transaction first does ``SET LOCAL ROLE`` to it, so the
  query has that role's privileges only (a role that cannot be set fails the check);
* the check refuses to run when the login (``session_user``) or the role in effect is a
  superuser, unless ``[health] allow_superuser = true``. The login counts too because a
  superuser's ``SET ROLE`` is no limit: ``set_config('role', 'postgres', true)`` inside
  the query sets it back;
* a query that changed the role anyway (``set_config('role', ...)``) fails the check.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opsctl.adapters.checks.database import connect_within
from opsctl.ports import CheckFinding, CheckState

# SQLite calls the progress handler every this many virtual-machine instructions.
_SQLITE_PROGRESS_STEPS = 10_000


@dataclass(frozen=True)
class SqlProbe:
    url: str
    connect_timeout_s: float
    query: str
    judge: Callable[[float], CheckState]
    warning: float | None = None
    critical: float | None = None
    role: str | None = None
    allow_superuser: bool = False

    def check(self, timeout_s: float) -> CheckFinding:
        db = connect_within(self.url, self.connect_timeout_s, timeout_s)
        try:
            with db.connect() as conn:  # connection failures raise DatabaseUnavailable
                raw: Any = conn.connection.driver_connection
                if db.is_sqlite:
                    outcome = _run_sqlite(raw, self.query, timeout_s)
                else:
                    outcome = _run_postgres(raw, self.query, timeout_s, self.role,
                                            self.allow_superuser)
        finally:
            db.dispose()
        if isinstance(outcome, CheckFinding):
            return outcome
        return self._judged(outcome)

    def _judged(self, rows: list[tuple[Any, ...]]) -> CheckFinding:
        if len(rows) != 1 or len(rows[0]) != 1:
            shape = f"{len(rows)} row(s)" if len(rows) != 1 else f"{len(rows[0])} columns"
            return CheckFinding("critical", "query_failed",
                                f"expected one row with one number, got {shape}")
        value = _number(rows[0][0])
        if value is None:
            return CheckFinding("critical", "query_failed",
                                f"expected a number, got {rows[0][0]!r}")
        detail = {"value": value, "warning": self.warning, "critical": self.critical}
        state = self.judge(value)
        if state == "ok":
            return CheckFinding(detail=detail)
        level = self.critical if state == "critical" else self.warning
        return CheckFinding(state, "threshold",
                            f"value {value:g} crossed the {state} level {level:g}", detail)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


_WHO = ("SELECT session_user, current_user, "
        "coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false), "
        "coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)")


def _run_postgres(raw: Any, query: str, timeout_s: float, role: str | None,
                  allow_superuser: bool) -> list[tuple[Any, ...]] | CheckFinding:
    import psycopg
    from psycopg import sql

    try:
        with raw.cursor() as cur:
            # The session is already read-only (default_transaction_read_only) with a
            # statement_timeout; saying it again costs nothing and survives a pooler.
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
            if role is not None:
                try:
                    cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                except psycopg.Error as exc:
                    return CheckFinding("critical", "role_failed",
                                        f"cannot SET ROLE {role!r}: {_first_line(exc)}")
            cur.execute(_WHO)
            login, current, login_super, current_super = cur.fetchone()
            if (login_super or current_super) and not allow_superuser:
                who = login if login_super else current
                return CheckFinding(
                    "critical", "superuser_refused",
                    f"refused to run the sql check as superuser {who!r}: connect as a "
                    "least-privileged role (and set [health] sql_role), or set "
                    "[health] allow_superuser = true")
            # prepare=True: the extended protocol refuses more than one statement.
            cur.execute(query.strip().rstrip(";"), prepare=True)
            rows = cur.fetchmany(2) if cur.description is not None else []
            cur.execute("SELECT current_user")
            after = cur.fetchone()[0]
            if after != current:
                return CheckFinding("critical", "role_changed",
                                    f"the query changed its role from {current!r} to "
                                    f"{after!r}; its result is not trusted")
        return [tuple(row) for row in rows]
    except psycopg.errors.QueryCanceled:
        return CheckFinding("critical", "timeout",
                            f"query did not finish within {timeout_s:g}s (cancelled)")
    except psycopg.Error as exc:
        return CheckFinding("critical", "query_failed", _first_line(exc))
    finally:
        with suppress(psycopg.Error):
            raw.rollback()


def _run_sqlite(raw: sqlite3.Connection, query: str, timeout_s: float
                ) -> list[tuple[Any, ...]] | CheckFinding:
    due = time.monotonic() + timeout_s
    raw.set_progress_handler(lambda: int(time.monotonic() > due), _SQLITE_PROGRESS_STEPS)
    try:
        cur = raw.cursor()
        try:
            # sqlite3 refuses a second statement in one execute().
            cur.execute(query.strip().rstrip(";"))
            rows = cur.fetchmany(2) if cur.description is not None else []
        finally:
            cur.close()
        return [tuple(row) for row in rows]
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            return CheckFinding("critical", "timeout",
                                f"query did not finish within {timeout_s:g}s (interrupted)")
        return CheckFinding("critical", "query_failed", _first_line(exc))
    except sqlite3.Error as exc:
        return CheckFinding("critical", "query_failed", _first_line(exc))
    finally:
        with suppress(sqlite3.Error):
            raw.set_progress_handler(None, 0)
            raw.rollback()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
