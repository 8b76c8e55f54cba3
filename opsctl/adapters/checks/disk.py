"""The ``disk`` check: enough free space where the exports (or anything else) are written.

Free space is what an unprivileged writer can still use (``f_bavail``), because that is
what the export service hits first. Within five points above ``min_free_percent`` the
check warns, so someone hears about a filling disk before it is critical.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from opsctl.ports import CheckFinding

WARNING_MARGIN_PERCENT = 5.0


@dataclass(frozen=True)
class DiskProbe:
    path: Path
    min_free_percent: float

    def check(self, timeout_s: float) -> CheckFinding:
        try:
            usage = shutil.disk_usage(self.path)
        except FileNotFoundError:
            return CheckFinding("critical", "not_found", f"{self.path} does not exist")
        except OSError as exc:
            return CheckFinding("critical", "unreadable", f"{self.path}: {exc.strerror or exc}")
        free_percent = 100.0 * usage.free / usage.total if usage.total else 0.0
        detail = {"path": str(self.path), "free_percent": round(free_percent, 2),
                  "free_bytes": usage.free, "total_bytes": usage.total,
                  "min_free_percent": self.min_free_percent,
                  "warning_free_percent": self.min_free_percent + WARNING_MARGIN_PERCENT}
        shown = f"{free_percent:.1f}% free at {self.path}"
        if free_percent < self.min_free_percent:
            return CheckFinding("critical", "threshold",
                                f"{shown}, below min_free_percent {self.min_free_percent:g}",
                                detail)
        if free_percent < self.min_free_percent + WARNING_MARGIN_PERCENT:
            return CheckFinding("warning", "threshold",
                                f"{shown}, within {WARNING_MARGIN_PERCENT:g} points of "
                                f"min_free_percent {self.min_free_percent:g}", detail)
        return CheckFinding(detail=detail)
