"""Everything people see: rich tables, colours, progress bars. Never used in JSON mode,
where rich is not even imported: it is imported inside the functions that draw.

Summary renderers are registered per summary event type by the command modules, so a new
job brings its own view without touching this file.

The one rule of this package: no dynamic text (a path, an error message, a check name, a
config path) ever reaches rich as markup. It goes in as a ``Text`` object or through
``escape()``; markup strings are built only from fixed words. ``[/evil].csv`` in a file
path would otherwise stop a run with a ``MarkupError``, and ``[source] table`` in an error
message would silently lose its brackets. A run's headline (``headline()``) is a line of
its own above any table, never a table title squeezed to the table's width.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsctl.events import EventSink
from opsctl.ports import Progress, ProgressFactory, no_progress
from opsctl.runtime import Runtime

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from opsctl.jobs.result import JobResult
    from opsctl.jobs.runner import JobOutcome

Renderer = Callable[["Console", "JobResult"], None]
_RENDERERS: dict[str, Renderer] = {}
# Event types a summary view already shows in full (health_check rows in the probe's
# table), so the event sink does not print them a second time on stderr.
_ABSORBED: set[str] = set()
# Per-batch event types whose message belongs on the progress bar, not one line each.
_NOTES: set[str] = set()

STATE_STYLES = {
    "ok": "green", "healthy": "green", "valid": "green", "completed": "green",
    "warning": "yellow", "degraded": "yellow", "insufficient_samples": "cyan",
    "skipped": "yellow", "dry_run": "cyan",
    "alert": "bold red", "critical": "bold red", "unhealthy": "bold red", "error": "bold red",
    "failed": "red", "interrupted": "red",
}


def register(
    summary_type: str, *, absorbs: tuple[str, ...] = (), notes: tuple[str, ...] = ()
) -> Callable[[Renderer], Renderer]:
    def add(renderer: Renderer) -> Renderer:
        _RENDERERS[summary_type] = renderer
        _ABSORBED.update(absorbs)
        _NOTES.update(notes)
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
        # COLUMNS and LINES of the run's own environment, which tests inject.
        _environ=dict(runtime.env),
    )


def styled_state(state: str) -> str:
    """The state word as markup in its colour (the word escaped: states come from data)."""
    from rich.markup import escape

    style = STATE_STYLES.get(state, "bold")
    return f"[{style}]{escape(state)}[/]"


def state_text(state: str) -> Text:
    from rich.text import Text

    return Text(state, style=STATE_STYLES.get(state, "bold"))


# States a headline need not spell out: the message says what happened ("deleted 12
# files"), and "completed deleted ..." or "dry_run dry run: ..." reads as a stutter.
_QUIET_STATES = frozenset({"ok", "completed", "healthy", "valid", "dry_run"})


def headline(out: Console, result: JobResult) -> None:
    """The run's one-line verdict on a line of its own, in the colour of its state; a
    state that is news (alert, failed, interrupted) leads, unless the message says it."""
    from rich.text import Text

    style = STATE_STYLES.get(result.state, "bold")
    line = Text()
    spoken = result.state.replace("_", " ")
    if result.state not in _QUIET_STATES and not result.message.startswith(spoken):
        line.append(f"{spoken}: ", style=f"{style} bold")
    line.append(result.message, style=style)
    out.print(line)


def event_sink(runtime: Runtime) -> EventSink:
    """Non-summary events (threshold warnings, per-file errors) as one line each. The
    console is made on the first such event: JSON mode never calls the sink, and must not
    pay for importing rich."""
    consoles: list[Console] = []

    def sink(event: dict[str, Any]) -> None:
        if "exit_code" in event or event.get("type") in _ABSORBED:
            return  # summaries and errors are drawn by outcome()
        if event.get("type") in _NOTES:
            if _ACTIVE:
                _ACTIVE[-1].note(str(event.get("message", "")))
            return  # the summary counts them; one line per batch is noise
        from rich.text import Text

        level = str(event.get("level", "info"))
        style = {"warning": "yellow", "error": "red"}.get(level, "dim")
        if not consoles:
            consoles.append(console(runtime, stderr=True))
        line = Text(f"{level:>7}", style=style)
        line.append(f" {event.get('message', '')}")
        consoles[0].print(line, soft_wrap=True)

    return sink


def outcome(runtime: Runtime, result: JobOutcome) -> None:
    if runtime.output == "json":
        return
    from rich.text import Text

    out = console(runtime)
    if result.result is not None:
        renderer = _RENDERERS.get(result.result.summary_type, key_values)
        renderer(out, result.result)
    elif result.error is not None:
        if result.error.kind == "lock_held":
            line = Text("skipped: ", style="yellow")
            line.append(result.error.message)
            console(runtime, stderr=True).print(line, soft_wrap=True)
        else:
            error_line(runtime, result.error.kind, result.error.message)


def error_line(runtime: Runtime, kind: str, message: str) -> None:
    from rich.text import Text

    line = Text("error", style="bold red")
    line.append(f" ({kind}): {message}")
    # Not wrapped by us: a path or a URL in an error must survive copy and paste.
    console(runtime, stderr=True).print(line, soft_wrap=True)


def key_values(out: Console, result: JobResult) -> None:
    """The generic view: the headline, then one row per summary field."""
    from rich.table import Table
    from rich.text import Text

    headline(out, result)
    table = Table(show_header=False, box=None, padding=(0, 2), pad_edge=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in result.summary().items():
        shown = state_text(str(value)) if key == "state" else Text(plain(value))
        table.add_row(Text(key), shown)
    out.print(table)


def field_table(rows: Iterable[tuple[str, Any]], *, align: str = "right") -> Any:
    """A summary's figures as two columns, a bold label and its value, the way each
    command's own view shows them. A value that is a ``str`` is rich markup (escape
    anything dynamic in it); pass ``Text`` for literal text."""
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2), pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", justify=align)  # type: ignore[arg-type]
    for label, value in rows:
        table.add_row(label, value)
    return table


def plain(value: Any) -> str:
    """A summary value as text for people (not markup: wrap it in ``Text``)."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {plain(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(plain(v) for v in value) or "—"
    if value is None:
        return "—"
    return str(value)


@dataclass(frozen=True)
class Column:
    """A column of a table that must read at any terminal width.

    ``drop`` orders what goes first when the line is too narrow (higher goes first; 0
    never goes). The ``flexible`` column (a reason, a summary, a path) takes the rest of
    the line and folds long text onto more lines instead of cutting it.
    """

    name: str
    drop: int = 0
    right: bool = False
    flexible: bool = False


FLEXIBLE_MIN = 16
_GAP = 3  # a cell's padding on both sides and the (blank) rule between columns


def fitted_table(
    out: Console, columns: Sequence[Column], rows: Sequence[Sequence[RenderableType]]
) -> Table:
    """A table as wide as the console allows: fixed columns at their content's width,
    whole columns left out (least important first) rather than cut to ``s…``."""
    from rich import box
    from rich.table import Table

    kept = list(range(len(columns)))

    def width(index: int) -> int:
        cells = [_cell_len(row[index]) for row in rows]
        return max([len(columns[index].name), *cells])

    def needed(indices: list[int]) -> int:
        fixed = sum(width(i) for i in indices if not columns[i].flexible)
        flexible = sum(min(width(i), FLEXIBLE_MIN) for i in indices if columns[i].flexible)
        return fixed + flexible + _GAP * (len(indices) - 1)

    while needed(kept) > out.width:
        droppable = [i for i in kept if columns[i].drop > 0]
        if not droppable:
            break
        kept.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False)
    for i in kept:
        column = columns[i]
        if column.flexible:
            table.add_column(column.name, overflow="fold", min_width=FLEXIBLE_MIN)
        else:
            table.add_column(column.name, no_wrap=True, min_width=width(i),
                             justify="right" if column.right else "left")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table


def _cell_len(cell: RenderableType) -> int:
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.cell_len
    if isinstance(cell, str):
        return Text.from_markup(cell).cell_len
    return 0


class _RichProgress:
    """A rich progress bar fed at a fixed rate.

    Jobs call ``advance`` once per file or batch; handing each call to rich (a lock, a
    speed estimate) would make a 100k-file cleanup slower on a terminal than in JSON mode.
    Advances are summed here and passed on at most ``FLUSH_S`` apart; rich redraws on its
    own thread at the same rate. ``note`` is a line of detail under the bar's description
    (the last archive object written), instead of one log line per batch.
    """

    FLUSH_S = 0.1

    def __init__(self, runtime: Runtime, description: str, total: int | None, unit: str) -> None:
        from rich.markup import escape
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
            TextColumn("{task.fields[note]}", markup=False),
            console=console(runtime, stderr=True),
            transient=True,
            refresh_per_second=1 / self.FLUSH_S,
        )
        self._unit = unit
        self._task = self._progress.add_task(escape(description), total=total, rate="", note="")
        self._pending = 0
        self._flushed_at = time.monotonic()
        self._progress.start()
        _ACTIVE.append(self)

    def advance(self, amount: int = 1) -> None:
        self._pending += amount
        now = time.monotonic()
        if now - self._flushed_at >= self.FLUSH_S:
            self._flush(now)

    def note(self, text: str) -> None:
        self._progress.update(self._task, note=text)

    def _flush(self, now: float) -> None:
        self._progress.update(self._task, advance=self._pending)
        self._pending, self._flushed_at = 0, now
        speed = self._progress.tasks[0].speed
        self._progress.update(self._task, rate=f"{speed:,.0f} {self._unit}/s" if speed else "")

    def close(self) -> None:
        self._flush(time.monotonic())
        self._progress.stop()
        if self in _ACTIVE:
            _ACTIVE.remove(self)


# The progress bar on screen now, if any: the event sink hands it the per-batch events a
# summary view registered as ``notes``.
_ACTIVE: list[_RichProgress] = []


def progress_factory(runtime: Runtime) -> ProgressFactory:
    if not runtime.progress:
        return no_progress

    def make(description: str, total: int | None, unit: str) -> Progress:
        return _RichProgress(runtime, description, total, unit)

    return make
