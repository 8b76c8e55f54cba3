"""When a job last did its work (exit 0, 1 or 2), from run history.

The ``(job, finished_at)`` index is walked backwards and the first success ends the walk,
so the lookup stays cheap however long the history is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect, select

from opsctl.adapters.db import tables
from opsctl.adapters.db.database import Database
from opsctl.exit_codes import JOB_SUCCEEDED


def last_success_at(db: Database, job: str) -> datetime | None:
    runs = tables.runs
    query = (
        select(runs.c.finished_at)
        .where(runs.c.job == job, runs.c.exit_code.in_(sorted(JOB_SUCCEEDED)))
        .order_by(runs.c.finished_at.desc())
        .limit(1)
    )
    with db.connect() as conn:
        if not inspect(conn).has_table(runs.name):
            return None
        found: datetime | None = conn.execute(query).scalar_one_or_none()
        return found
