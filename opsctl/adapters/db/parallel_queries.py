"""Independent statements run at once, each on its own pooled connection.

PostgreSQL gives no parallel plan to some aggregates (``percentile_cont`` among them), so a
job that needs several can only overlap them from the client. Two things make that safe:

- an optional exported snapshot (``pg_export_snapshot()``) that every connection imports,
  so statements that run side by side still describe the same rows;
- cancellation on the server of whatever still runs when the caller fails or is
  interrupted (SIGTERM while it waits), so the run ends now rather than when its slowest
  statement would have finished. Cancelling repeats until every worker is done: a cancel
  that reaches the server just before its query does is otherwise lost.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection

from opsctl.adapters.db.database import Database
from opsctl.errors import DatabaseUnavailable

T = TypeVar("T")

CANCEL_RETRY_S = 0.05
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


class ParallelQueries:
    """Use as a context manager; ``submit`` a function of a connection per statement."""

    def __init__(self, db: Database, workers: int, snapshot: str | None = None) -> None:
        if snapshot is not None and not _SNAPSHOT_ID.fullmatch(snapshot):
            raise DatabaseUnavailable(f"unexpected snapshot id from the server: {snapshot!r}")
        self._db = db
        self._snapshot = snapshot
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="opsctl-query")
        self._futures: list[Future[Any]] = []
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self._stopping = False
        db.engine  # noqa: B018 - build the engine here, not in racing worker threads

    def submit(self, query: Callable[[Connection], T]) -> Future[T]:
        future = self._pool.submit(self._run, query)
        self._futures.append(future)
        return future

    def _run(self, query: Callable[[Connection], T]) -> T:
        with self._db.connect() as conn:
            if self._snapshot is not None:
                conn.execution_options(isolation_level="REPEATABLE READ")
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self._snapshot}'")
            raw = conn.connection.dbapi_connection
            with self._lock:
                if self._stopping:
                    raise DatabaseUnavailable("query abandoned: the run is stopping")
                self._running.add(raw)
            try:
                return query(conn)
            finally:
                with self._lock:
                    self._running.discard(raw)

    def __enter__(self) -> ParallelQueries:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            with self._lock:
                self._stopping = True
            for future in self._futures:
                future.cancel()  # not started yet: never starts
            pending = {future for future in self._futures if not future.done()}
            while pending:
                with self._lock:
                    running = list(self._running)
                for raw in running:
                    _cancel(raw)
                pending = wait(pending, timeout=CANCEL_RETRY_S).not_done
        self._pool.shutdown(wait=True)


def _cancel(raw: Any) -> None:
    cancel = getattr(raw, "cancel_safe", None) or getattr(raw, "cancel", None)
    if cancel is None:
        return
    with suppress(Exception):  # best effort: the run is failing anyway
        cancel()
