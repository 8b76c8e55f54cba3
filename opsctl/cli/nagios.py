"""``--format nagios``: a command becomes a monitoring plugin.

A plugin's stdout is its status line, whatever ``--output`` says, and a failure (database
down, bad config, lock held) must still print one line, ``UNKNOWN`` or the like, with the
exit code: Nagios shows "(null)" for a check that printed nothing. So the view replaces the
whole rendering of the invocation, results and errors alike; events still reach stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from opsctl.domain.nagios import status_line

if TYPE_CHECKING:
    from opsctl.cli.session import Session
    from opsctl.jobs.result import JobResult
    from opsctl.jobs.runner import JobOutcome
    from opsctl.runtime import Runtime


class ReportFormat(StrEnum):
    events = "events"
    nagios = "nagios"


FORMAT_HELP = ("events: what --output says (JSON lines or a table); nagios: one "
               "monitoring-plugins status line with perfdata, whatever --output says.")

LineBuilder = Callable[["JobResult"], str]


@dataclass(frozen=True)
class NagiosView:
    name: str
    line: LineBuilder

    def show(self, runtime: Runtime, outcome: JobOutcome, redact: Callable[[str], str]) -> None:
        if outcome.result is not None:
            text = self.line(outcome.result)
        else:
            error = outcome.error
            text = self.error_line(int(outcome.exit_code), error.kind if error else "error",
                                   error.message if error else "failed")
        runtime.stdout.write(redact(text) + "\n")

    def error_line(self, exit_code: int, kind: str, message: str) -> str:
        return status_line(self.name, exit_code, f"{kind}: {message}")


def use(session: Session, format_: ReportFormat, name: str, line: LineBuilder) -> None:
    """Make this invocation a plugin when ``--format nagios`` was given."""
    if format_ is not ReportFormat.nagios:
        return
    session.runtime.output, session.runtime.color = "text", False
    session.view = NagiosView(name, line)
