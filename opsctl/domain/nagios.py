"""Status lines for Nagios, Icinga and Sensu: the monitoring-plugins output format.

A check command is judged by two things: its exit code (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN, which opsctl's exit codes already are) and the first line of its stdout::

    OPSCTL FAILURE_RATE WARNING - 7.0% of 100 exports failed | 'failure_ratio'=0.07;0.05;0.1;0;1

Everything after ``|`` is performance data, which graphing add-ons (PNP4Nagios, Icinga's
graphite writer, Sensu's metric extraction) parse strictly, so it follows the
monitoring-plugins development guidelines to the letter: ``'label'=value[UOM];warn;crit;min;max``,
plain decimals (never ``1e-05``), ``U`` for a value that cannot be determined, trailing
empty fields dropped, thresholds in the guidelines' range syntax (``10`` alerts above 10,
``10:`` below 10).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
# Units the guidelines name; anything else would make a graphing add-on drop the metric.
UNITS = frozenset({"", "s", "ms", "us", "%", "B", "KB", "MB", "GB", "TB", "c"})


def state_word(exit_code: int) -> str:
    """The plugin state of an exit code; anything outside 0-3 (64, 75, 78, 143) is UNKNOWN."""
    return STATES.get(int(exit_code), "UNKNOWN")


def number(value: float | int | bool) -> str:
    """A plain decimal: no exponent, no trailing zeros, integers without a point."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return "U"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def above(limit: float | None) -> str:
    """The range that alerts when the value is greater than ``limit``."""
    if limit is None:
        return ""
    return number(limit) if limit >= 0 else f"~:{number(limit)}"


def below(limit: float | None) -> str:
    """The range that alerts when the value is less than ``limit``."""
    return "" if limit is None else f"{number(limit)}:"


@dataclass(frozen=True)
class Perf:
    """One performance-data item. ``warn``/``crit`` are ranges (see :func:`above`,
    :func:`below`); ``None`` as the value prints ``U``."""

    label: str
    value: float | int | bool | None
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        if self.uom not in UNITS:
            raise ValueError(f"unit {self.uom!r} is not one of the plugin guidelines' units")

    def __str__(self) -> str:
        value = "U" if self.value is None else number(self.value) + self.uom
        fields = [value, self.warn, self.crit,
                  "" if self.min is None else number(self.min),
                  "" if self.max is None else number(self.max)]
        while len(fields) > 1 and fields[-1] == "":
            fields.pop()
        return f"{quote_label(self.label)}={';'.join(fields)}"


def quote_label(label: str) -> str:
    """Always single-quoted (the guidelines allow it, and spaces require it); a quote
    inside is doubled; ``=`` would end the label, so it becomes ``_``."""
    cleaned = _one_line(label).replace("=", "_").replace("'", "''")
    return f"'{cleaned}'"


def status_line(name: str, exit_code: int, text: str, perfdata: Sequence[Perf] = ()) -> str:
    """``OPSCTL <NAME> <STATE> - <text> | <perfdata>``, one line, no trailing newline.

    ``|`` separates the perfdata, so it cannot appear in the text; newlines would start the
    plugin's long output, so the text is folded onto one line.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"plugin name must be one upper-case token, got {name!r}")
    line = f"OPSCTL {name} {state_word(exit_code)} - {_one_line(text).replace('|', '/')}"
    if perfdata:
        line += " | " + " ".join(str(item) for item in perfdata)
    return line


def _one_line(text: str) -> str:
    return " ".join(text.split())
