"""Parsing of the DUR values used on the command line and in the config (``1h30m``, ``7d``).

Go-style compound durations are what operators already type for systemd and Kubernetes,
so opsctl accepts the same shape and nothing looser: a bare number is rejected because
"5" could mean seconds or minutes, and guessing wrong in a cleanup job is costly.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# ASCII only: \d would otherwise accept digits of other scripts (fullwidth, Arabic-Indic).
MAX_SECONDS = 36500 * 86400
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """Return the duration written as ``30s``, ``15m``, ``1h30m``, ``7d``; ValueError otherwise."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("empty duration; expected e.g. 30s, 15m, 1h, 7d or 1h30m")
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(cleaned):
        raise ValueError(f"invalid duration {text!r}; expected e.g. 30s, 15m, 1h, 7d or 1h30m")
    # A century is longer than any window or retention makes sense for, and keeps
    # ``now - duration`` inside the range datetimes (and databases) can hold.
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration {text!r} is too long (at most 36500d)")
    value = timedelta(seconds=seconds)
    # Checked after conversion: ``0.0001ms`` is positive but rounds to a zero timedelta.
    if value <= timedelta(0):
        raise ValueError(f"duration {text!r} must be greater than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest DUR string for ``value``; the inverse of parse_duration for whole seconds."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
