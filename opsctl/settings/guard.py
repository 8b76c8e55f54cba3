"""The deletion guard's keys, shared by ``[files]`` and ``[logs]``."""

from __future__ import annotations

from pydantic import Field

from opsctl.domain.deletion_guard import GuardLimits
from opsctl.settings.fields import Section


class DeletionGuardKeys(Section):
    # Unset: no absolute cap. 0 means "delete nothing" (any eligible item trips the guard).
    max_delete: int | None = Field(default=None, ge=0)
    # Above this many items the relative limits (fraction, anomaly) apply too.
    guard_min: int = Field(default=10_000, ge=0)
    # More than this many times the median of the last 10 successful runs trips the guard.
    anomaly_factor: float = Field(default=10.0, gt=0)

    def guard_limits(self, max_delete: int | None = None,
                     fraction: float | None = None) -> GuardLimits:
        """The limits of one run: ``--max-delete`` over the configured ``max_delete``."""
        return GuardLimits(
            max_delete=self.max_delete if max_delete is None else max_delete,
            guard_min=self.guard_min,
            max_delete_fraction=fraction,
            anomaly_factor=self.anomaly_factor,
        )
