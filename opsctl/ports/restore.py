"""``logs restore``: the table archived rows go back into, one object at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RestoreWindow:
    """Rows with ``since <= created_at < until`` (either bound may be open)."""

    since: datetime | None = None
    until: datetime | None = None

    def overlaps(self, low: datetime | None, high: datetime | None) -> bool:
        """Whether rows created between ``low`` and ``high`` (inclusive) may match."""
        if self.since is not None and high is not None and high < self.since:
            return False
        return not (self.until is not None and low is not None and low >= self.until)


@dataclass(frozen=True)
class LoadCounts:
    matching: int  # rows of the object inside the window
    restored: int  # of those, rows written (their id was not in the table)


class ObjectLoad(Protocol):
    """One object's rows on their way into the table: nothing reaches the table before
    ``finish``, and ``abort`` leaves it untouched."""

    def add(self, block: bytes) -> None:
        """Complete JSON lines of the object, as they are read and checked."""

    def finish(self) -> LoadCounts:
        """The object passed: its rows of the window whose id is absent are written (or
        staged for the next group; counted only, in a dry run)."""

    def abort(self) -> None: ...


class RestoreTarget(Protocol):
    table: str  # as people name it, for messages

    def check(self) -> None:
        """``ConfigError`` (exit 78, naming the table) unless the table exists and has the
        source table's columns; nothing is written either way."""

    def load(self, window: RestoreWindow, dry_run: bool) -> ObjectLoad:
        """The next object's load. Objects that passed may be written in groups: a
        ``finish`` returns what it wrote (maybe nothing yet, maybe earlier objects too)."""

    def flush(self) -> LoadCounts:
        """Write what finished objects left staged; call at the end of the run."""

    def close(self) -> None: ...
