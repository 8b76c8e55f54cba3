"""``--html PATH`` for the read-only reports: the path checked first, the page written last.

The page shows what the report's summary event carries, so a command with ``--html``
still prints its summary and exits with its usual code; the page is one more view of the
same result. The pages adapter (and jinja2 with it) is imported only when a page is asked
for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from opsctl.jobs.result import JobResult
from opsctl.runtime import Runtime

HtmlOption = Annotated[
    Path | None,
    typer.Option("--html", metavar="PATH",
                 help="Also write the result as one self-contained HTML page to PATH "
                      "(atomically; its directory must exist), e.g. into a web root."),
]


def checked(path: Path | None) -> Path | None:
    """The page path, or a UsageError (64) before any work when it cannot take a page."""
    if path is None:
        return None
    from opsctl.adapters.pages import check_page_path

    return check_page_path(path)


def write_status_page(path: Path, result: JobResult, runtime: Runtime,
                      redact: Callable[[str], str]) -> None:
    from opsctl.adapters.pages import StatusView, render_status_page, write_page

    params = result.extra.get("params")
    view = StatusView.from_summary(
        result.fields, state=result.state, message=result.message,
        generated_at=_now(result, runtime), host=runtime.host,
        failed_runs=result.extra.get("failed_runs", ()),
        threshold=getattr(params, "threshold", None), warning=getattr(params, "warning", None),
    )
    write_page(path, render_status_page(view, redact=redact, cache_dir=_cache(runtime)))


def write_report_page(path: Path, result: JobResult, runtime: Runtime) -> None:
    from opsctl.adapters.pages import ReportView, render_report_page, write_page

    view = ReportView.from_summary(result.fields, generated_at=_now(result, runtime),
                                   host=runtime.host)
    write_page(path, render_report_page(view, cache_dir=_cache(runtime)))


def _cache(runtime: Runtime) -> Path:
    from opsctl.locations import cache_dir

    return cache_dir(runtime.env) / "templates"


def _now(result: JobResult, runtime: Runtime) -> datetime:
    now: Any = result.extra.get("now")
    return now if isinstance(now, datetime) else runtime.clock()
