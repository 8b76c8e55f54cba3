"""The database connection: engine set-up per backend, timeouts, read-only mode, and the
translation of driver errors into opsctl's own.

Only this package imports SQLAlchemy and psycopg; everything above sees ``Database`` and
``DatabaseUnavailable`` (exit 3) or ``OperationTimeout``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from opsctl.adapters.db.source_schema import missing_column, missing_table
from opsctl.errors import DatabaseUnavailable, OperationTimeout, OpsctlError

# Parallel statements of one run (metrics) use a few connections at once; none is ever
# closed before dispose(), so the pool must hold them all.
POOL_SIZE = 32

# SQLSTATE 57014: query_canceled, which is how PostgreSQL reports statement_timeout.
_QUERY_CANCELED = "57014"


class Database:
    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 300.0,
        read_only: bool = False,
        pooled: bool = False,
    ) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_s = statement_timeout_s
        self.read_only = read_only
        # pooled: one process-long connection reused by every statement of a run (the
        # job, its lock and its bookkeeping), instead of a fresh connection per use. The
        # owner must dispose() it; see _pool_options.
        self.pooled = pooled
        parsed = make_url(url)
        self.dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
        self._parsed = parsed

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        database = self._parsed.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database).expanduser().resolve()

    @property
    def not_created(self) -> bool:
        """An embedded database whose file is not there yet (a fresh install): read-only
        reports read it as empty, since opening it, even read-only, fails, and creating it
        would be a write."""
        path = self.sqlite_path
        return path is not None and not path.exists()

    @property
    def safe_url(self) -> str:
        return self._parsed.render_as_string(hide_password=True)

    @cached_property
    def engine(self) -> Engine:
        if self.is_sqlite:
            return self._sqlite_engine()
        return self._postgres_engine()

    def _sqlite_engine(self) -> Engine:
        path = self.sqlite_path
        if path is None:
            return create_engine(self.url, poolclass=NullPool)
        if self.read_only:
            if not path.exists():
                raise DatabaseUnavailable(f"SQLite database {path} does not exist")
            url = f"sqlite:///file:{path}?mode=ro&uri=true"
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseUnavailable(
                    f"cannot create the database directory {path.parent}: {error.strerror}"
                ) from error
            url = f"sqlite:///{path}"
        # SQLite's timeout is how long to wait for another process's write lock, not for a
        # server: a cleanup batch of another job may hold it briefly, so wait longer.
        busy_timeout = max(30.0, self.connect_timeout_s)
        connect_args: dict[str, Any] = {"timeout": busy_timeout}
        if self.pooled:
            connect_args["check_same_thread"] = False  # pooled across worker threads
        engine = create_engine(url, connect_args=connect_args, **self._pool_options())
        read_only = self.read_only

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if read_only:
                cursor.execute("PRAGMA query_only = ON")
            else:
                # WAL lets the monitored service keep writing while a job reads.
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        return engine

    def _postgres_engine(self) -> Engine:
        options = f"-c statement_timeout={int(self.statement_timeout_s * 1000)}"
        if self.read_only:
            # Every transaction of a dry run is READ ONLY: the server itself refuses writes.
            options += " -c default_transaction_read_only=on"
        url = self._parsed
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(
            url,
            # The dialect would otherwise look hstore up in the catalog on the first
            # connection of every run (three round trips); opsctl has no hstore column.
            use_native_hstore=False,
            connect_args={
                "connect_timeout": max(1, math.ceil(self.connect_timeout_s)),
                "options": options,
                "application_name": "opsctl",
            },
            **self._pool_options(),
        )
        if self.pooled:
            _reset_session_settings(engine)
        return engine

    def _pool_options(self) -> dict[str, Any]:
        """Unpooled (the default): each connect() is a fresh connection, closed on exit,
        so nothing is left open by code that never disposes. Pooled: connections are made
        on demand and all kept until dispose() (LIFO, no overflow to discard), so a run
        whose statements follow one another uses one connection, and a session-level
        advisory lock taken on it lives until the lock is released or the run ends."""
        if not self.pooled:
            return {"poolclass": NullPool}
        from sqlalchemy.pool import QueuePool

        return {"poolclass": QueuePool, "pool_size": POOL_SIZE, "max_overflow": 0,
                "pool_use_lifo": True, "pool_timeout": max(30.0, self.connect_timeout_s)}

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection whose driver errors come out as opsctl errors (exit 3)."""
        with translate_errors(self), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def standalone(self) -> Iterator[Connection]:
        """A connection for statements that each stand alone (a count, a lookup, an
        advisory lock, one INSERT or DELETE, atomic by itself): on PostgreSQL in
        autocommit, so each costs its own round trip and no BEGIN and COMMIT around it.
        Not for several statements that must see one snapshot or commit together: use
        ``begin()`` for those. (SQLite, in process, has no round trip to save: there the
        block is one transaction, committed when it ends without an error.)"""
        with self.connect() as conn:
            if not self.is_sqlite:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
            if conn.in_transaction():
                conn.commit()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success."""
        with translate_errors(self), self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def _reset_session_settings(engine: Engine) -> None:
    """A pooled connection goes back with the server settings it started with.

    Some statements set a session parameter for their own connection (``SET
    synchronous_commit TO OFF`` for bulk deletes, ``SET TIME ZONE 'UTC'`` for JSON
    timestamps); pooled, the next user of that connection would inherit it (a run record
    committed without waiting for its WAL flush). A connection that ran a session-level
    ``SET`` gets ``RESET ALL`` on its way back, which leaves advisory locks alone (unlike
    ``DISCARD ALL``); the others cost nothing.
    """

    @event.listens_for(engine, "before_cursor_execute")
    def _note_set(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        head = statement.lstrip()[:10].upper()
        if head.startswith("SET ") and not head.startswith("SET LOCAL"):
            conn.connection.info["session_set"] = True

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection: Any, record: Any, _state: Any) -> None:
        if not record.info.pop("session_set", False):
            return
        if not dbapi_connection.autocommit:
            dbapi_connection.rollback()
        with dbapi_connection.cursor() as cursor:
            cursor.execute("RESET ALL")
        if not dbapi_connection.autocommit:
            dbapi_connection.commit()


@contextmanager
def translate_errors(db: Database) -> Iterator[None]:
    try:
        yield
    except exc.DBAPIError as error:
        raise _translated(db, error) from error
    except exc.SQLAlchemyError as error:
        raise DatabaseUnavailable(f"database error: {error}") from error


def _translated(db: Database, error: exc.DBAPIError) -> OpsctlError:
    orig = error.orig
    detail = (str(orig) if orig is not None else str(error)).strip().splitlines()
    message = detail[0] if detail else type(error).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    where = db.safe_url
    if sqlstate == _QUERY_CANCELED:
        return OperationTimeout(
            f"database statement exceeded {db.statement_timeout_s:g}s "
            f"(database.statement_timeout_s): {message}"
        )
    missing = _missing_source(db, sqlstate, message)
    if missing is not None:
        return missing
    if isinstance(error, exc.OperationalError | exc.InterfaceError) and not (
        db.is_sqlite and _SQLITE_ANSWERS.search(message)
    ):
        return DatabaseUnavailable(f"database unavailable ({where}): {message}")
    answered = DatabaseUnavailable(f"database error ({where}): {message}")
    answered.answered = True
    return answered


# SQLSTATE 42P01 undefined_table, 42703 undefined_column; SQLite says it in words.
_UNDEFINED_TABLE, _UNDEFINED_COLUMN = "42P01", "42703"
_TABLE_NAME = re.compile(r'relation "([^"]+)" does not exist|no such table: (\S+)')
_COLUMN_NAME = re.compile(r'column "?([^" ]+)"? does not exist|no such column: (\S+)')
# SQLite reports these as OperationalError although the database did answer.
_SQLITE_ANSWERS = re.compile(r"no such (table|column)|syntax error|has no column")


def _missing_source(db: Database, sqlstate: str | None, message: str) -> OpsctlError | None:
    """A missing table or column that is not one of opsctl's own: the ``[source]`` names
    are wrong (78), whichever job ran the statement."""
    table = _TABLE_NAME.search(message)
    if table and (sqlstate in (None, _UNDEFINED_TABLE)):
        name = table.group(1) or table.group(2)
        if not name.split(".")[-1].startswith("opsctl_"):
            return missing_table(name, db.safe_url)
    column = _COLUMN_NAME.search(message)
    if column and (sqlstate in (None, _UNDEFINED_COLUMN)):
        return missing_column(column.group(1) or column.group(2), db.safe_url)
    return None


class RunConnection:
    """One connection kept for a whole batch job, one short transaction per batch.

    The engine opens a fresh connection per ``connect()`` (NullPool); a job walking
    thousands of batches would spend more on connecting than on its statements.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One short transaction on the run's connection, committed on success."""
        with translate_errors(self.db):
            if self._conn is None:
                self._conn = self.db.engine.connect()
            with self._conn.begin():
                yield self._conn

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with translate_errors(self.db):
                conn.close()
