"""The sql check on the real SQLite and PostgreSQL: thresholds, and that it cannot write
or run away."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select
from support import export_row, insert_exports

from opsctl.adapters.checks.sql import SqlProbe
from opsctl.adapters.db import migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.ports import CheckFinding
from opsctl.settings.health import SqlCheck


def seeded(url: str, processing: int = 3, completed: int = 2) -> str:
    db = Database(url)
    migrations.ensure_schema(db)  # also creates the SQLite file and its directory
    db.dispose()
    insert_exports(url, [export_row(status="processing") for _ in range(processing)]
                   + [export_row(status="completed") for _ in range(completed)])
    return url


def rows_in_export_logs(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            table = tables.source_table("export_logs", {})
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


STUCK = "SELECT count(*) FROM export_logs WHERE status = 'processing'"


def sql_probe(url: str, query: str = STUCK, warning: float | None = 3,
              critical: float | bool = 5) -> SqlProbe:
    check = SqlCheck(name="stuck", kind="sql", query=query, warning=warning, critical=critical)
    # The test server's login is a superuser; test_checks_sql_role.py runs real
    # least-privileged roles and the refusal.
    return SqlProbe(url, 5, check.query, check.judge, check.warning, check.critical_threshold,
                    allow_superuser=True)


@pytest.mark.parametrize(
    ("processing", "expected"),
    [
        (2, CheckFinding(detail={"value": 2.0, "warning": 3, "critical": 5.0})),
        # A value equal to a level is not above it.
        (3, CheckFinding(detail={"value": 3.0, "warning": 3, "critical": 5.0})),
        (4, CheckFinding("warning", "threshold", "value 4 crossed the warning level 3",
                         {"value": 4.0, "warning": 3, "critical": 5.0})),
        (7, CheckFinding("critical", "threshold", "value 7 crossed the critical level 5",
                         {"value": 7.0, "warning": 3, "critical": 5.0})),
    ],
)
def test_the_value_is_judged_against_warning_and_critical(
    db_url: str, processing: int, expected: CheckFinding
) -> None:
    seeded(db_url, processing=processing)

    assert sql_probe(db_url).check(5.0) == expected


def test_a_percent_sign_and_a_colon_in_the_query_are_plain_sql(db_url: str) -> None:
    seeded(db_url)
    query = "SELECT count(*) FROM export_logs WHERE status LIKE 'proc%' AND user_id <> ':x'"

    assert sql_probe(db_url, query).check(5.0).detail["value"] == 3.0


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM export_logs",
        "DELETE FROM export_logs RETURNING 1",
        "SELECT 1; DELETE FROM export_logs",
        "COMMIT; DELETE FROM export_logs",
    ],
)
def test_a_query_that_writes_fails_the_check_and_deletes_nothing(db_url: str, query: str) -> None:
    seeded(db_url)

    finding = sql_probe(db_url, query).check(5.0)

    assert (finding.state, finding.error_kind) == ("critical", "query_failed")
    assert rows_in_export_logs(db_url) == 5


def test_a_slow_postgresql_query_is_cancelled_by_the_statement_timeout(pg_url: str) -> None:
    finding = sql_probe(pg_url, "SELECT count(*) FROM pg_sleep(5)").check(1.0)

    assert finding == CheckFinding("critical", "timeout",
                                   "query did not finish within 1s (cancelled)")


def test_a_slow_sqlite_query_is_interrupted_at_the_timeout(sqlite_url: str) -> None:
    seeded(sqlite_url)
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT count(*) FROM n")

    finding = sql_probe(sqlite_url, endless).check(0.5)

    assert finding == CheckFinding("critical", "timeout",
                                   "query did not finish within 0.5s (interrupted)")



@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 1, 2", "expected one row with one number, got 2 columns"),
        ("SELECT id FROM export_logs", "expected one row with one number, got 2 row(s)"),
        ("SELECT id FROM export_logs WHERE id < 0", "expected one row with one number, "
         "got 0 row(s)"),
        ("SELECT 'many'", "expected a number, got 'many'"),
        ("SELECT NULL", "expected a number, got None"),
    ],
)
def test_anything_but_one_number_fails_the_check(db_url: str, query: str, message: str) -> None:
    seeded(db_url)

    assert sql_probe(db_url, query).check(5.0) == CheckFinding("critical", "query_failed",
                                                               message)


def test_a_broken_query_fails_with_the_database_message(db_url: str) -> None:
    seeded(db_url)

    finding = sql_probe(db_url, "SELECT count(*) FROM no_such_table").check(5.0)

    assert (finding.state, finding.error_kind) == ("critical", "query_failed")
    assert finding.error_message is not None and "no_such_table" in finding.error_message
