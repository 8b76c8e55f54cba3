"""Prometheus's text exposition format (0.0.4), the one node_exporter's textfile collector
and the Pushgateway read.

A run exports a few dozen samples: a few lines of text. Written here, they cost a watched
run nothing to speak of; importing a client library for them cost it more than the rest
of the observer together. The rules followed are the format's own: ``# HELP`` and
``# TYPE`` once per family before its samples, label values escaped (backslash, double
quote, newline), help text escaped (backslash, newline), values as Go prints floats
(``+Inf``, ``-Inf``, ``NaN``, exponents from 1e+21 on, ``1.5e+06`` style), no timestamps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Family:
    """One metric: its name, type (``gauge`` or ``summary``), help and samples, each a
    mapping of label names to values and the sample's value."""

    name: str
    type: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        lines.extend(f"{family.name}{_labels(labels)} {go_float(value)}"
                     for labels, value in family.samples)
    return "".join(line + "\n" for line in lines)


def go_float(value: float) -> str:
    """A float as Prometheus's Go code prints it, so ``quantile="0.95"`` and values read
    back the same as from any client library."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    dot = text.find(".")
    # Python writes 1234567.0 where Go writes 1.234567e+06.
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape_value(labels[name])}"' for name in sorted(labels))
    return "{" + inner + "}"


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
