"""The deletion guard's flags, shared by ``files cleanup``, ``files audit`` and ``logs
cleanup``, and the guard each of those runs gets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from opsctl.jobs.deletion_guard import DeletionGuard

if TYPE_CHECKING:
    from opsctl.adapters.db.database import Database
    from opsctl.domain.deletion_guard import GuardLimits

MaxDelete = Annotated[int | None, typer.Option(
    "--max-delete", metavar="N", min=0,
    help="Delete nothing (exit 2) when more than N would go; 0 deletes nothing at all. "
    "[default: max_delete of the section, unset]")]
Force = Annotated[bool, typer.Option(
    "--force", help="Skip the deletion guard for this run (the summary says forced).")]


def deletion_guard(db: Database, limits: GuardLimits, force: bool,
                   baseline_fields: Sequence[str]) -> DeletionGuard:
    """The guard of one run, its baseline read from the run history in ``db``."""
    from opsctl.adapters.db.deletion_history import DbDeletionHistory

    return DeletionGuard(limits, DbDeletionHistory(db), force, tuple(baseline_fields))
