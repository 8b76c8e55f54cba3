"""Run history: ``opsctl_runs`` rows written by the job runner, read by ``runs`` and
freshness checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete

from opsctl.adapters.db import locks, migrations, tables
from opsctl.adapters.db.database import Database
from opsctl.ports import RunRecord


class DbBookkeeping:
    """``RunBookkeeping`` on the configured database (the lock sits beside it)."""

    def __init__(self, db: Database, lock_dir: Path | None = None) -> None:
        self.db = db
        self.lock_dir = lock_dir

    def ensure_schema(self) -> None:
        migrations.ensure_schema(self.db)

    @contextmanager
    def job_lock(self, job: str) -> Iterator[None]:
        with locks.job_lock(self.db, job, self.lock_dir):
            yield

    def record_run(self, run: RunRecord) -> None:
        with self.db.standalone() as conn:
            conn.execute(
                tables.runs.insert().values(
                    job=run.job,
                    run_id=run.run_id,
                    host=run.host,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    state=run.state,
                    exit_code=run.exit_code,
                    duration_ms=run.duration_ms,
                    summary=run.summary,
                    error=run.error,
                )
            )

    def prune_runs(self, older_than: datetime) -> int:
        # One indexed range delete (ix_opsctl_runs_finished), cheap at every run's end.
        with self.db.standalone() as conn:
            result = conn.execute(delete(tables.runs).where(tables.runs.c.finished_at < older_than))
            return int(result.rowcount or 0)
