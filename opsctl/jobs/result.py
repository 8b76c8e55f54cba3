"""What every job returns: a summary event plus the state and exit code it implies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsctl.exit_codes import ExitCode

_LEVELS = {ExitCode.OK: "info", ExitCode.WARNING: "warning"}


@dataclass
class JobResult:
    summary_type: str
    message: str
    state: str
    exit_code: ExitCode
    fields: dict[str, Any] = field(default_factory=dict)
    # Data for the text renderer only (samples, rows); never part of the JSON event.
    extra: dict[str, Any] = field(default_factory=dict)
    # The job found opsctl's database unreachable (a health probe's finding): the runner
    # then does not spend another connect timeout trying to record the run.
    database_down: bool = False

    @property
    def level(self) -> str:
        return _LEVELS.get(self.exit_code, "error")

    def summary(self) -> dict[str, Any]:
        return {**self.fields, "state": self.state, "exit_code": int(self.exit_code)}

