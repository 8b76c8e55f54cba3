"""Bar charts of block characters (``▁▂▃▄▅▆▇█``) for a terminal.

A series longer than the chart is wide is folded so that each column holds several
periods and shows the highest of them: a spike must never be averaged away. Charts are
``rich.text.Text`` lines, never markup, so no value can be read as a style.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text

BLOCKS = " ▁▂▃▄▅▆▇█"
STEPS = len(BLOCKS) - 1
THRESHOLD_MARK = "╌"
GAP = "·"


def fold(values: Sequence[float | None], width: int) -> tuple[list[float | None], int]:
    """At most ``width`` columns, each the highest of ``per_column`` consecutive values."""
    per_column = max(1, math.ceil(len(values) / max(1, width)))
    columns: list[float | None] = []
    for i in range(0, len(values), per_column):
        present = [v for v in values[i:i + per_column] if v is not None]
        columns.append(max(present) if present else None)
    return columns, per_column


@dataclass(frozen=True)
class Chart:
    """One chart: a title line, ``height`` rows of bars with a value axis, a time axis."""

    title: str
    values: Sequence[float | None]
    label: Callable[[float], str]
    height: int = 4
    threshold: float | None = None
    first: str = ""
    last: str = ""

    def lines(self, width: int, axis: int = 0) -> list[Text]:
        """The chart in ``width`` columns; charts stacked with the same ``axis`` width put
        the same periods in the same columns."""
        names = self._axis_names()
        axis = max([axis] + [len(name) for name in names.values()])
        top = self._top()
        mark = self._mark_row(top)
        columns, _ = fold(self.values, self.plot_width(width, axis))
        lines = [Text(self.title, style="bold")]
        for level in reversed(range(self.height)):
            line = Text(names.get(level, "").rjust(axis) + " ", style="dim")
            line.append("┤" if level == mark else "│", style="yellow" if level == mark
                        else "dim")
            line.append_text(self._row(columns, level, top, mark))
            lines.append(line)
        gap = max(1, len(columns) - len(self.first) - len(self.last))
        lines.append(Text(" " * (axis + 2) + self.first + " " * gap + self.last, style="dim"))
        return lines

    def axis_width(self) -> int:
        return max(len(name) for name in self._axis_names().values())

    def _axis_names(self) -> dict[int, str]:
        top = self._top()
        mark = self._mark_row(top)
        names = {0: self.label(0.0)}
        if mark is not None:
            names[mark] = self.label(self.threshold or 0.0)  # over the 0: it is obvious
        names.setdefault(self.height - 1, self.label(top))
        return names

    @staticmethod
    def plot_width(width: int, axis: int) -> int:
        """Columns left for bars once the value axis (labels, a space, a rule) is drawn."""
        return max(8, width - axis - 2)

    def _mark_row(self, top: float) -> int | None:
        if self.threshold is None:
            return None
        return min(self.height - 1, int(self.threshold / top * self.height * STEPS) // STEPS)

    def _top(self) -> float:
        highest = max((v for v in self.values if v is not None), default=0.0)
        if self.threshold is not None:
            # Room above the threshold line, so it is always drawn inside the chart.
            highest = max(highest, self.threshold * 1.25)
        return highest if highest > 0 else 1.0

    def _row(self, columns: list[float | None], level: int, top: float,
             mark: int | None) -> Text:
        row = Text()
        for value in columns:
            if value is None:
                row.append(GAP if level == 0 else " ", style="dim")
                continue
            eighths = round(value / top * self.height * STEPS)
            if value > 0 and eighths == 0:
                eighths = 1  # a non-zero value never looks like nothing
            fill = min(STEPS, max(0, eighths - level * STEPS))
            above = self.threshold is not None and value > self.threshold
            if fill == 0 and level == mark:
                row.append(THRESHOLD_MARK, style="yellow")
            else:
                row.append(BLOCKS[fill], style="red" if above else "cyan")
        return row
