"""The deletion guard's baseline: counts read from the summaries of recent successful runs.

One indexed query (``ix_opsctl_runs_job_finished``) of at most ``limit`` rows; the counts
are read from the stored summary in Python, the same way on both backends. A database
without opsctl's tables (a first dry run) has no history: an empty baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect, select

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database

# A run that finished with some items failed (exit 1) still deleted its usual amount.
_SUCCESS_CODES = (0, 1)


class DbDeletionHistory:
    """``DeletionHistory`` over ``opsctl_runs``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def recent_counts(self, job: str, fields: Sequence[str], limit: int) -> list[int]:
        path = self.db.sqlite_path
        if path is not None and not path.exists():
            return []
        runs = tables.runs
        query = (select(runs.c.summary)
                 .where(runs.c.job == job, runs.c.exit_code.in_(_SUCCESS_CODES))
                 .order_by(runs.c.finished_at.desc()).limit(limit))
        with self.db.connect() as conn:
            if not inspect(conn).has_table(runs.name):
                return []
            summaries = conn.execute(query).scalars().all()
        counts = []
        for summary in summaries:
            count = _count(summary, fields)
            if count is not None:
                counts.append(count)
        return counts


def _count(summary: Any, fields: Sequence[str]) -> int | None:
    if not isinstance(summary, dict) or summary.get("dry_run"):
        return None
    try:
        return sum(int(summary[name]) for name in fields)
    except (KeyError, TypeError, ValueError):
        return None
