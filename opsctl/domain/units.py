"""Numbers as people read them in the text output.

JSON events keep raw numbers; these strings are only for ``--output text``. Every
function rounds first and picks the unit second, so a value just under a boundary reads
``1.0 MB`` or ``1m 00s`` instead of ``1000.0 kB`` or ``60.0 s``. A missing value (a
percentile over no exports) reads as an em dash rather than ``None`` or ``0``.
"""

from __future__ import annotations

MISSING = "—"

_BYTE_UNITS = ("kB", "MB", "GB", "TB", "PB", "EB")


def human_bytes(n: float | None) -> str:
    """Decimal SI sizes, the way disks and S3 bills count: ``512 B``, ``3.4 MB``."""
    if n is None:
        return MISSING
    sign = "-" if n < 0 else ""
    size = abs(n)
    if round(size) < 1000:
        return f"{sign}{round(size)} B"
    for unit in _BYTE_UNITS:
        size /= 1000
        if round(size, 1) < 1000 or unit == _BYTE_UNITS[-1]:
            break
    return f"{sign}{size:.1f} {unit}"


def human_ms(ms: float | None) -> str:
    """A duration from milliseconds: ``850 ms``, ``1.2 s``, ``2m 05s``, ``1h 02m``, ``1d 03h``."""
    if ms is None:
        return MISSING
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if round(ms) < 1000:
        return f"{sign}{round(ms)} ms"
    tenths = round(ms / 100)
    if tenths < 600:
        return f"{sign}{tenths / 10:.1f} s"
    seconds = round(ms / 1000)
    if seconds < 3600:
        minutes, seconds = divmod(seconds, 60)
        return f"{sign}{minutes}m {seconds:02d}s"
    minutes = round(ms / 60_000)
    if minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"{sign}{hours}h {minutes:02d}m"
    days, hours = divmod(round(ms / 3_600_000), 24)
    return f"{sign}{days}d {hours:02d}h"


def human_percent(ratio: float | None) -> str:
    """A ratio as a percentage with one decimal: 0.85 reads ``85.0 %``."""
    if ratio is None:
        return MISSING
    return f"{ratio * 100:.1f} %"


def human_count(n: int) -> str:
    """Thousands separated by commas: ``1,234,567``."""
    return f"{n:,}"
