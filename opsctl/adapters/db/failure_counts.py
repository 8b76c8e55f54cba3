"""Completed and failed exports in a time window, counted in the database.

One aggregate query on the ``created_at`` index, grouped by status and (for failures)
error type: a check over a busy hour moves a few dozen rows to Python whatever the
table's size, and the counts and the error breakdown always describe the same snapshot
(two queries would not, at READ COMMITTED, while the service keeps writing).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import and_, case, func, literal, select

from opsctl.adapters.db.database import Database
from opsctl.adapters.db.tables import source_table
from opsctl.ports import ErrorTypeCount, OutcomeCounts

COMPLETED, FAILED = "completed", "failed"
UNKNOWN_ERROR = "unknown"  # a failed row with no error_type still counts in the breakdown


class DbFailureCounts:
    """``FailureCounts`` over the configured source table (``[source]``)."""

    def __init__(self, db: Database, table: str, columns: Mapping[str, str]) -> None:
        self.db = db
        self.table = source_table(table, columns)

    def counts(self, start: datetime, end: datetime, top: int) -> OutcomeCounts:
        t = self.table
        error_type = case(
            (t.c.status == FAILED, func.coalesce(t.c.error_type, literal(UNKNOWN_ERROR))),
            else_=None,
        ).label("error_type")
        query = (
            select(t.c.status, error_type, func.count())
            .where(and_(t.c.created_at >= start, t.c.created_at < end),
                   t.c.status.in_((COMPLETED, FAILED)))
            .group_by(t.c.status, error_type)
        )
        completed = failed = 0
        errors: list[ErrorTypeCount] = []
        with self.db.standalone() as conn:
            for status, name, n in conn.execute(query):
                if status == FAILED:
                    failed += int(n)
                    errors.append(ErrorTypeCount(str(name), int(n)))
                else:
                    completed += int(n)
        errors.sort(key=lambda e: (-e.count, e.error_type))
        return OutcomeCounts(completed, failed, tuple(errors[:top]))
