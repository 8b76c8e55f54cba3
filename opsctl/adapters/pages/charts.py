"""Small inline SVG charts: bars for counts, a line for rates and durations.

Our own few dozen lines rather than a charting library: the page must carry its charts
inline (no script, no file from elsewhere), and a chart of 720 hourly points has to stay
a few tens of kilobytes. Colours come from the page's CSS classes (``bar``, ``line``,
``threshold``, ``grid``), so light and dark schemes need no second chart. Each chart has a
``<title>`` and an ``aria-label``; the numbers themselves are also in the page as text.

Every element is a ``Markup`` literal filled by ``Markup.format``, which escapes what it
is given: a period label or a unit can never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup

WIDTH = 720
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 84, 10, 14, 30
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
METER_W, METER_H = 320, 28

Format = Callable[[float], str]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10.0 * power


def _n(value: float) -> str:
    """A coordinate, short: two decimals at most, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _open(title: str, css: str, width: int, height: int) -> list[Markup]:
    return [
        Markup('<svg class="{css}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
               'xmlns="http://www.w3.org/2000/svg"><title>{t}</title>').format(
            css=css, w=width, h=height, t=title),
    ]


def _hline(css: str, y: float, x1: float = LEFT, x2: float = WIDTH - RIGHT) -> Markup:
    return Markup('<line class="{c}" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>').format(
        c=css, x1=_n(x1), x2=_n(x2), y=_n(y))


def _text(css: str, x: float, y: float, anchor: str, text: str) -> Markup:
    return Markup('<text class="{c}" x="{x}" y="{y}" text-anchor="{a}">{t}</text>').format(
        c=css, x=_n(x), y=_n(y), a=anchor, t=text)


def _frame(title: str, top: float, fmt: Format, labels: Sequence[str]) -> list[Markup]:
    parts = _open(title, "chart", WIDTH, HEIGHT)
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H * (1 - fraction)
        parts.append(_hline("grid", y))
        parts.append(_text("axis", LEFT - 6, y + 4, "end", fmt(top * fraction)))
    if labels:
        step = PLOT_W / len(labels)
        parts.append(_text("axis", LEFT, HEIGHT - 8, "start", labels[0]))
        if len(labels) > 2:
            middle = len(labels) // 2
            parts.append(_text("axis", LEFT + step * (middle + 0.5), HEIGHT - 8, "middle",
                               labels[middle]))
        if len(labels) > 1:
            parts.append(_text("axis", WIDTH - RIGHT, HEIGHT - 8, "end", labels[-1]))
    return parts


def _close(parts: list[Markup]) -> Markup:
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def bar_chart(values: Sequence[float], labels: Sequence[str], *, title: str, fmt: Format,
              unit: str = "") -> Markup:
    """One bar per value; each bar's tooltip names its period and value."""
    top = nice_ceiling(max(values, default=0.0))
    parts = _frame(title, top, fmt, labels)
    step = PLOT_W / max(len(values), 1)
    width = step * (0.8 if step > 3 else 1.0)
    for index, value in enumerate(values):
        if value <= 0:
            continue
        height = PLOT_H * value / top
        parts.append(Markup('<rect class="bar" x="{x}" y="{y}" width="{w}" height="{h}">'
                            "<title>{label}: {value}{unit}</title></rect>").format(
            x=_n(LEFT + step * index + (step - width) / 2), y=_n(TOP + PLOT_H - height),
            w=_n(width), h=_n(height), label=labels[index], value=fmt(value), unit=unit))
    return _close(parts)


def line_chart(values: Sequence[float | None], labels: Sequence[str], *, title: str,
               fmt: Format, threshold: float | None = None,
               threshold_text: str = "") -> Markup:
    """A line through the values; a missing value breaks the line, an isolated value is a
    dot. A threshold is a dashed line labelled with ``threshold_text``."""
    known = [v for v in values if v is not None]
    top = nice_ceiling(max([*known, (threshold or 0.0) * 1.2], default=0.0))
    parts = _frame(title, top, fmt, labels)
    step = PLOT_W / max(len(values), 1)
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((LEFT + step * (index + 0.5), TOP + PLOT_H * (1 - value / top)))
    for run in runs:
        if len(run) == 1:
            parts.append(Markup('<circle class="dot" cx="{x}" cy="{y}" r="2.5"/>').format(
                x=_n(run[0][0]), y=_n(run[0][1])))
        elif run:
            points = " ".join(f"{_n(x)},{_n(y)}" for x, y in run)
            parts.append(Markup('<polyline class="line" points="{p}"/>').format(p=points))
    if threshold is not None:
        y = TOP + PLOT_H * (1 - threshold / top)
        parts.append(_hline("threshold", y))
        parts.append(_text("threshold-label", WIDTH - RIGHT - 4, y - 4, "end", threshold_text))
    return _close(parts)


def meter(value: float | None, *, limit: float, warning: float | None, title: str) -> Markup:
    """A horizontal bar for one ratio, with the warning and the threshold marked."""
    top = max(nice_ceiling(max(value or 0.0, limit * 1.5)), limit * 1.5)
    parts = _open(title, "meter", METER_W, METER_H)
    parts.append(Markup('<rect class="meter-track" x="0" y="6" width="{w}" height="16"/>')
                 .format(w=METER_W))
    if value is not None and value > 0:
        fill = "meter-critical" if value > limit else (
            "meter-warning" if warning is not None and value > warning else "meter-ok")
        parts.append(Markup('<rect class="{c}" x="0" y="6" width="{w}" height="16"/>').format(
            c=fill, w=_n(METER_W * min(value / top, 1.0))))
    for mark in (warning, limit):
        if mark is not None:
            x = METER_W * mark / top
            parts.append(Markup('<line class="threshold" x1="{x}" x2="{x}" y1="2" y2="26"/>')
                         .format(x=_n(x)))
    return _close(parts)
