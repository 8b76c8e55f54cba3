"""Views to HTML: Jinja2 with autoescaping on, templates beside this module.

Every job name, error message and path reaches the page through autoescaping, so
``<script>`` in an error message is text, never markup; only the SVG the chart module
builds (itself escaped inside) is passed through as ``Markup``. Secrets are taken out
of the views before rendering, with the same redactor the JSON events use.

Compiling the templates costs more than rendering them (about 0.1 s against 1 ms), and
cron regenerates a page every minute, so the compiled templates are kept in a bytecode
cache when the caller names a directory for it; a cache that cannot be read or written
is skipped, never an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket
from markupsafe import Markup

from opsctl import __version__
from opsctl.adapters.pages import charts
from opsctl.adapters.pages.views import ReportView, StatusView
from opsctl.domain.units import MISSING, human_count, human_ms, human_percent

TEMPLATES = Path(__file__).with_name("templates")
Redact = Callable[[str], str]

_STATE_CLASSES = {"ok": "ok", "healthy": "ok", "warning": "warning", "degraded": "warning",
                  "critical": "critical", "alert": "critical", "unhealthy": "critical"}
_EXIT_CLASSES = {0: "ok", 1: "warning", 2: "critical", 75: "info"}


def when(moment: datetime | None) -> str:
    return MISSING if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return MISSING
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return "in " + human_ms(-seconds * 1000)
    return human_ms(seconds * 1000) + " ago"


def period_label(moment: datetime, period: str) -> str:
    return moment.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m-%d %H:00")


def exit_class(code: int | None) -> str:
    if code is None:
        return "none"
    return _EXIT_CLASSES.get(code, "unknown")


def _percent_axis(value: float) -> str:
    return f"{value * 100:.3g} %"


class _BestEffortCache(FileSystemBytecodeCache):
    """A bytecode cache that never fails a page: on any OS error it compiles afresh."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache(directory: Path | None) -> FileSystemBytecodeCache | None:
    if directory is None:
        return None
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return _BestEffortCache(str(directory))


@cache
def environment(cache_dir: Path | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("j2", "html"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(cache_dir),
    )
    env.filters.update(
        when=when, age=age, period_label=period_label, exit_class=exit_class,
        state_class=lambda state: _STATE_CLASSES.get(str(state), "unknown"),
        pct=human_percent, ms=human_ms,
        count=lambda n: MISSING if n is None else human_count(int(n)),
    )
    return env


def render_status_page(view: StatusView, *, redact: Redact | None = None,
                       cache_dir: Path | None = None) -> str:
    if redact is not None:
        view = _redacted_status(view, redact)
    meter = Markup("")
    if view.threshold is not None:
        meter = charts.meter(view.failure_rate, limit=view.threshold, warning=view.warning,
                             title=f"failure rate {human_percent(view.failure_rate)} against "
                                   f"the threshold {human_percent(view.threshold)}")
    return environment(cache_dir).get_template("status.html.j2").render(
        view=view, meter=meter, host=view.host, generated_at=view.generated_at,
        version=__version__)


def render_report_page(view: ReportView, *, cache_dir: Path | None = None) -> str:
    unit = "day" if view.period == "daily" else "hour"
    labels = [period_label(p.window_start, view.period) for p in view.series]
    threshold = view.failure_rate_threshold
    rendered = {}
    if not view.empty:
        rendered = {
            "volume": charts.bar_chart(
                [float(p.total) for p in view.series], labels, title=f"exports per {unit}",
                fmt=lambda v: human_count(round(v)), unit=" exports"),
            "failure_rate": charts.line_chart(
                [p.failure_rate for p in view.series], labels,
                title=f"failure rate per {unit}", fmt=_percent_axis, threshold=threshold,
                threshold_text=f"threshold {human_percent(threshold)}"),
            "p95": charts.line_chart(
                [p.p95_duration_ms for p in view.series], labels,
                title=f"p95 duration per {unit}", fmt=human_ms),
        }
    return environment(cache_dir).get_template("report.html.j2").render(
        view=view, charts=rendered, unit=unit, host=view.host,
        generated_at=view.generated_at, version=__version__)


def _redacted_status(view: StatusView, redact: Redact) -> StatusView:
    return replace(
        view, message=redact(view.message), findings=[redact(f) for f in view.findings],
        failed_runs=[replace(run, error_message=redact(run.error_message)
                             if run.error_message else run.error_message)
                     for run in view.failed_runs])
