"""Everything people see: rich tables, colours, progress bars. Never used in JSON mode,
where rich is not even imported: it is imported inside the functions that draw.

Summary renderers are registered per summary event type by the command modules, so a new
job brings its own view without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opsctl.events import EventSink
from opsctl.ports import Progress, ProgressFactory, no_progress
from opsctl.runtime import Runtime

if TYPE_CHECKING:
    from rich.console import Console

    from opsctl.jobs.result import JobResult
    from opsctl.jobs.runner import JobOutcome

Renderer = Callable[["Console", "JobResult"], None]
_RENDERERS: dict[str, Renderer] = {}
# Event types a summary view already shows in full (health_check rows in the probe's
# table), so the event sink does not print them a second time on stderr.
_ABSORBED: set[str] = set()

STATE_STYLES = {
    "ok": "green", "healthy": "green", "valid": "green", "completed": "green",
    "warning": "yellow", "degraded": "yellow", "insufficient_samples": "cyan",
    "skipped": "yellow", "dry_run": "cyan",
    "alert": "bold red", "critical": "bold red", "unhealthy": "bold red", "error": "bold red",
    "failed": "red", "interrupted": "red",
}


def register(
    summary_type: str, *, absorbs: tuple[str, ...] = ()
) -> Callable[[Renderer], Renderer]:
    def add(renderer: Renderer) -> Renderer:
        _RENDERERS[summary_type] = renderer
        _ABSORBED.update(absorbs)
        return renderer

    return add


def console(runtime: Runtime, *, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(
        file=runtime.stderr if stderr else runtime.stdout,
        force_terminal=runtime.color or None,
        no_color=not runtime.color,
        highlight=False,
        soft_wrap=False,
    )


def styled_state(state: str) -> str:
    style = STATE_STYLES.get(state, "bold")
    return f"[{style}]{state}[/]"


def event_sink(runtime: Runtime) -> EventSink:
    """Non-summary events (threshold warnings, per-file errors) as one line each. The
    console is made on the first such event: JSON mode never calls the sink, and must not
    pay for importing rich."""
    consoles: list[Console] = []

    def sink(event: dict[str, Any]) -> None:
        if "exit_code" in event or event.get("type") in _ABSORBED:
            return  # summaries and errors are drawn by outcome()
        level = event.get("level", "info")
        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        if not consoles:
            consoles.append(console(runtime, stderr=True))
        err = consoles[0]
        err.print(f"[{style}]{level:>7}[/] {event.get('message', '')}", markup=True)

    return sink


def outcome(runtime: Runtime, result: JobOutcome) -> None:
    if runtime.output == "json":
        return
    out = console(runtime)
    if result.result is not None:
        renderer = _RENDERERS.get(result.result.summary_type, key_values)
        renderer(out, result.result)
    elif result.error is not None:
        if result.error.kind == "lock_held":
            console(runtime, stderr=True).print(f"[yellow]skipped:[/] {result.error.message}")
        else:
            error_line(runtime, result.error.kind, result.error.message)


def error_line(runtime: Runtime, kind: str, message: str) -> None:
    console(runtime, stderr=True).print(f"[bold red]error[/] ({kind}): {message}",
                                        markup=True)


def key_values(out: Console, result: JobResult, title: str | None = None) -> None:
    """The generic view: one row per summary field."""
    from rich.table import Table

    table = Table(title=title or result.message, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in result.summary().items():
        shown = styled_state(str(value)) if key == "state" else _plain(value)
        table.add_row(key, shown)
    out.print(table)


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "—"
    if value is None:
        return "—"
    return str(value)


class _RichProgress:
    def __init__(self, runtime: Runtime, description: str, total: int | None, unit: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console(runtime, stderr=True),
            transient=True,
        )
        self._unit = unit
        self._task = self._progress.add_task(description, total=total, rate="")
        self._progress.start()

    def advance(self, amount: int = 1) -> None:
        task = self._progress.tasks[0]
        speed = task.speed
        rate = f"{speed:,.0f} {self._unit}/s" if speed else ""
        self._progress.update(self._task, advance=amount, rate=rate)

    def close(self) -> None:
        self._progress.stop()


def progress_factory(runtime: Runtime) -> ProgressFactory:
    if not runtime.progress:
        return no_progress

    def make(description: str, total: int | None, unit: str) -> Progress:
        return _RichProgress(runtime, description, total, unit)

    return make
