"""One run per job at a time.

PostgreSQL: a session-level advisory lock (on a dedicated connection, or on the run's own
connection when the database is pooled), so the lock holds across hosts and the server
drops it the moment the holder's connection dies (a ``kill -9`` never leaves a stale
lock). SQLite: an OS file lock (flock) beside the
database file, which the kernel releases when the process dies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, text

from opsctl.adapters.db.database import Database, translate_errors
from opsctl.errors import DatabaseUnavailable, LockHeld


def advisory_key(job: str) -> int:
    """A stable signed 64-bit key per job (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(f"opsctl:{job}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def job_lock(db: Database, job: str, lock_dir: Path | None = None) -> Iterator[None]:
    if db.is_sqlite:
        with _file_lock(db, job, lock_dir):
            yield
    else:
        with _advisory_lock(db, job):
            yield


@contextmanager
def _advisory_lock(db: Database, job: str) -> Iterator[None]:
    if db.pooled:
        with _pooled_advisory_lock(db, job):
            yield
        return
    key = advisory_key(job)
    with translate_errors(db):
        conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        with translate_errors(db):
            _take(conn, key, job)
        try:
            yield
        finally:
            with translate_errors(db):
                _release(conn, key)
    finally:
        conn.close()


@contextmanager
def _pooled_advisory_lock(db: Database, job: str) -> Iterator[None]:
    """The lock on the run's own pooled connection, so the job and its bookkeeping need
    no second one. A session-level advisory lock survives the transaction it was taken in
    and the pool's rollback on check-in; the pool never closes a connection before
    ``dispose()``, so the lock holds until it is released here or the run's connections
    are closed, never earlier. Should the unlock land on another pooled session (parallel
    statements left several), it finds nothing to release and the dispose at the end of
    the run releases the lock instead."""
    key = advisory_key(job)
    with db.standalone() as conn:
        _take(conn, key, job)
    try:
        yield
    finally:
        with db.standalone() as conn:
            _release(conn, key)


@contextmanager
def _file_lock(db: Database, job: str, lock_dir: Path | None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    base = db.sqlite_path
    directory = lock_dir or (base.parent if base else None)
    if directory is None:
        yield  # an in-memory database is private to this process
        return
    name = f"{base.name if base else 'opsctl'}.{job}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(directory / name, timeout=0)
        lock.acquire()
    except Timeout as error:
        raise LockHeld(f"another {job} run holds its lock ({directory / name})") from error
    except OSError as error:
        raise DatabaseUnavailable(f"cannot take the lock {directory / name}: {error}") from error
    try:
        yield
    finally:
        lock.release()


def advisory_lock_ids(job: str) -> tuple[int, int]:
    """The ``(classid, objid)`` under which ``pg_locks`` shows the job's advisory lock: a
    bigint key is split into its high and low 32 bits, as unsigned oids."""
    key = advisory_key(job) & 0xFFFFFFFFFFFFFFFF
    return key >> 32, key & 0xFFFFFFFF


def lock_file(db: Database, job: str, lock_dir: Path | None = None) -> Path | None:
    """Where a SQLite database keeps the job's file lock (None for an in-memory database)."""
    base = db.sqlite_path
    directory = lock_dir or (base.parent if base else None)
    if directory is None or base is None:
        return None
    return directory / f"{base.name}.{job}.lock"


def file_lock_held(path: Path) -> bool:
    """Whether a process holds the flock on ``path``, found without creating anything.

    A shared, non-blocking flock is taken and dropped at once: it fails only while a run
    holds the exclusive lock. A job starting in that microsecond would see its lock held and
    exit 75, which a scheduler treats as a harmless skip.
    """
    import fcntl
    import os

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no run has ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the shared lock if we got it
    return False


def _take(conn: Connection, key: int, job: str) -> None:
    got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
    if not got:
        raise LockHeld(f"another {job} run holds its lock (PostgreSQL advisory lock {key})")


def _release(conn: Connection, key: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
