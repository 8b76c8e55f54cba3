"""Time windows that metrics and checks are computed over.

Everything is UTC and half-open, ``[start, end)``: consecutive hourly windows then tile
time with no row counted twice and none dropped, and a cron run at minute 0 that asks for
"the last complete hour" gets the same window on every rerun.

Functions take ``now`` as an argument instead of reading the clock, so the caller's
injectable clock decides, and naive datetimes are refused: a naive ``now`` is usually
``datetime.now()`` in local time, which would silently shift every window by the host's
UTC offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

Period = Literal["hourly", "daily"]

_TIMESTAMP_HINT = "expected ISO 8601 such as 2026-11-01T10:00:00Z (no zone means UTC)"


def _require_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval ``[start, end)``; aware inputs in other zones are converted."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = _require_utc(self.start, "window start")
        end = _require_utc(self.end, "window end")
        if start >= end:
            raise ValueError(
                f"window start {start.isoformat()} must be before its end {end.isoformat()}"
            )
        # Frozen, so normalise through object.__setattr__; equal windows then compare equal
        # whatever zone they were built in.
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def hours(self) -> float:
        """Length in hours, the denominator of ``exports_per_hour``."""
        return self.duration.total_seconds() / 3600

    def contains(self, moment: datetime) -> bool:
        """True for ``start <= moment < end``: the end belongs to the next window."""
        return self.start <= _require_utc(moment, "moment") < self.end


def last_complete_period(now: datetime, period: Period) -> Window:
    """The hour or UTC day that ended most recently at or before ``now``.

    At exactly 10:00:00 the 09:00 hour has just completed, so it is the answer; that is
    what makes a cron run at minute 0 exact.
    """
    now = _require_utc(now, "now")
    if period == "hourly":
        end = now.replace(minute=0, second=0, microsecond=0)
        return Window(end - timedelta(hours=1), end)
    if period == "daily":
        end = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Window(end - timedelta(days=1), end)
    choices = ", ".join(get_args(Period))
    raise ValueError(f"unknown period {period!r}; expected one of: {choices}")


def trailing(now: datetime, length: timedelta) -> Window:
    """``[now - length, now)``: the rolling window of checks such as the failure rate."""
    if length <= timedelta(0):
        raise ValueError(f"window length must be positive, got {length}")
    now = _require_utc(now, "now")
    return Window(now - length, now)


def parse_timestamp(text: str) -> datetime:
    """Parse a TS from the command line; the contract says a zoneless timestamp is UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("z", "Z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(f"invalid timestamp {text!r}; {_TIMESTAMP_HINT}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def resolve_window(
    now: datetime,
    period: Period,
    window: timedelta | None,
    since: datetime | None,
    until: datetime | None,
) -> Window:
    """Apply the window rule of ``metrics aggregate`` to its options.

    ``--window`` gives a trailing window ending now, ``--since`` (with ``--until``
    defaulting to now) an explicit one, and neither the last complete ``period``.
    Conflicting or empty choices raise ValueError so the CLI can report a usage error
    instead of silently picking one.
    """
    if window is not None and (since is not None or until is not None):
        raise ValueError("--window cannot be combined with --since/--until; choose one")
    if until is not None and since is None:
        raise ValueError("--until needs --since")
    if window is not None:
        return trailing(now, window)
    if since is None:
        return last_complete_period(now, period)
    start = _require_utc(since, "--since")
    end = _require_utc(until if until is not None else now, "--until")
    if start >= end:
        raise ValueError(
            f"--since {start.isoformat()} must be before "
            f"{'--until' if until is not None else 'now'} {end.isoformat()}"
        )
    return Window(start, end)
