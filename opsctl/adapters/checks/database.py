"""The ``database`` check: can opsctl connect to its database and run ``SELECT 1``?

It opens its own connection rather than borrowing the runner's, so the latency it reports
is a real connect plus a round trip. It connects the way every opsctl job does: for the
embedded SQLite default that means the file is created on first use, so a newcomer's first
probe is healthy, not alarmed by a file that the same run would create anyway. In a dry
run it writes nothing: a missing SQLite file is then reported as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from opsctl.adapters.db.database import Database
from opsctl.ports import CheckFinding


@dataclass(frozen=True)
class DatabaseProbe:
    url: str
    connect_timeout_s: float
    read_only: bool = True

    def check(self, timeout_s: float) -> CheckFinding:
        db = connect_within(self.url, self.connect_timeout_s, timeout_s, self.read_only)
        path = db.sqlite_path
        if self.read_only and path is not None and not path.exists():
            return CheckFinding("critical", "not_found", f"SQLite database {path} does not "
                                "exist yet (`opsctl db init` creates it)")
        try:
            with db.connect() as conn:
                conn.execute(text("SELECT 1")).scalar_one()
        finally:
            db.dispose()
        return CheckFinding(detail={"backend": db.dialect})


def connect_within(
    url: str, connect_timeout_s: float, timeout_s: float, read_only: bool = True
) -> Database:
    """A ``Database`` whose connect and statements both fit in ``timeout_s``."""
    return Database(
        url,
        connect_timeout_s=min(connect_timeout_s, timeout_s),
        statement_timeout_s=timeout_s,
        read_only=read_only,
    )
