"""When jobs are due, and when a job is overdue: the dead man's switch, as pure functions.

Cron expressions are the portable five-field kind that crontab, systemd timers (through
:mod:`opsctl.domain.oncalendar`) and Kubernetes CronJobs all run the same way: numbers,
month and weekday names, ``*``, ranges, steps and lists. Extensions some parsers accept
(``L``, ``W``, ``#``, ``?``, ``@reboot``, a sixth field for seconds) are refused, because one
of the three targets would run them differently or not at all. Every time is UTC.

Iteration is croniter's (a maintained library, the same semantics as Vixie cron: when both
day-of-month and day-of-week are restricted, a day matching either one fires).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from croniter import croniter

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (lowest, highest) per field; day-of-week 7 is Sunday again, as in every cron.
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES: tuple[tuple[str, ...], ...] = ((), (), (), MONTHS, WEEKDAYS)
_PART = re.compile(r"(?P<base>\*|(?P<lo>\w+)(?:-(?P<hi>\w+))?)(?:/(?P<step>\d+))?", re.ASCII)

# A run that started up to this long before the fire time counts for it: cron starts a
# minute's jobs within that minute, and a clock a little ahead must not make a job overdue.
START_TOLERANCE = timedelta(minutes=1)


class InvalidCron(ValueError):
    """A cron expression opsctl refuses; the message says which part and why."""


@dataclass(frozen=True)
class CronSchedule:
    """A validated five-field cron expression (``expression`` as written, normalised spaces)."""

    expression: str

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        fields = text.split()
        if text.strip().startswith("@"):
            raise InvalidCron(f"{text.strip()!r}: macros such as @reboot or @hourly are not "
                              "supported; write the five fields")
        if len(fields) != len(FIELDS):
            raise InvalidCron(
                f"{text!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}; expected 5 "
                "(minute hour day-of-month month day-of-week)")
        for index, field in enumerate(fields):
            expand_field(field, index)
        schedule = cls(" ".join(fields))
        try:
            schedule.next_runs(datetime(2000, 1, 1, tzinfo=UTC), 1)
        except Exception as exc:  # croniter's "failed to find next date" (Feb 30th)
            raise InvalidCron(f"{text!r} never fires") from exc
        return schedule

    @cached_property
    def fields(self) -> tuple[frozenset[int], ...]:
        """Each field's values, day-of-week 7 folded into 0."""
        return tuple(expand_field(field, i) for i, field in enumerate(self.expression.split()))

    @property
    def days_either(self) -> bool:
        """Both day fields restricted: a day matching either one fires (Vixie cron's rule)."""
        return len(self.fields[2]) < 31 and len(self.fields[4]) < 7

    def _iter(self, start: datetime) -> croniter:
        from croniter import croniter

        return croniter(self.expression, start.astimezone(UTC))

    def next_runs(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times strictly after ``after``."""
        it = self._iter(after)
        return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]

    def latest_before(self, moment: datetime) -> datetime | None:
        """The latest fire time strictly before ``moment``."""
        try:
            found: datetime = self._iter(moment).get_prev(datetime)
            return found.astimezone(UTC)
        except Exception:  # no earlier date within croniter's search horizon
            return None

    def fires_between(self, start: datetime, end: datetime, limit: int) -> int:
        """How many fire times fall in ``(start, end)``, counting no further than ``limit``."""
        found = 0
        it = self._iter(start)
        while found < limit:
            moment = it.get_next(datetime)
            if moment >= end:
                break
            found += 1
        return found

    def shortest_interval(self) -> timedelta:
        """The shortest gap between two of the first 60 fire times of 2001 (a sample, enough
        for spacing a random delay or a start deadline)."""
        times = self.next_runs(datetime(2001, 1, 1, tzinfo=UTC), 60)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return min(gaps) if gaps else timedelta(days=366)


def expand_field(field: str, index: int) -> frozenset[int]:
    """The values a field matches; InvalidCron naming the field when it is not portable."""
    lo_bound, hi_bound = BOUNDS[index]
    name = FIELDS[index]
    values: set[int] = set()
    for part in field.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise InvalidCron(f"{name} field {field!r}: {part!r} is not a number, name, "
                              "*, range (a-b), step (/n) or list (a,b)")
        step = int(match["step"]) if match["step"] else 1
        if step < 1:
            raise InvalidCron(f"{name} field {field!r}: step must be at least 1")
        if match["base"] == "*":
            lo, hi = lo_bound, hi_bound if index != 4 else 6
        else:
            lo = _value(match["lo"], index, field)
            hi = _value(match["hi"], index, field) if match["hi"] else (
                (hi_bound if index != 4 else 6) if match["step"] else lo)
            if hi < lo:
                raise InvalidCron(f"{name} field {field!r}: range {part!r} runs backwards")
        values.update(range(lo, hi + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def _value(token: str, index: int, field: str) -> int:
    lo, hi = BOUNDS[index]
    name = FIELDS[index]
    names = _NAMES[index]
    if token.isdigit():
        value = int(token)
    elif token.lower() in names:
        value = names.index(token.lower()) + (1 if index == 3 else 0)
    else:
        raise InvalidCron(f"{name} field {field!r}: {token!r} is not a {name} value")
    if not lo <= value <= hi:
        raise InvalidCron(f"{name} field {field!r}: {value} is outside {lo}-{hi}")
    return value


# --- the dead man's switch ----------------------------------------------------------------


@dataclass(frozen=True)
class Overdue:
    """The verdict on one job at one moment, with the fire time it was judged against."""

    overdue: bool
    due_at: datetime | None = None  # T: the latest fire time more than grace ago
    reason: str = ""


def judge(
    schedule: CronSchedule | None,
    grace: timedelta,
    now: datetime,
    *,
    last_success_started_at: datetime | None,
    ever_succeeded: bool,
    running: bool,
    history_started_at: datetime | None,
) -> Overdue:
    """Whether a job is overdue at ``now``.

    A job is overdue when its schedule fired more than ``grace`` ago (the latest such time
    is T), no successful run has started since T minus one minute, and it is not running.
    A job that never succeeded is overdue once its schedule fired twice, more than
    ``grace`` ago, since opsctl's tables were created (``history_started_at``); without
    tables there is no history to judge, and nothing is overdue.

    ``last_success_started_at`` is the latest start of a successful run (exit 0, 1 or 2),
    or at least the latest one started since T minus one minute when there is such a run.
    """
    if schedule is None:
        return Overdue(False, reason="not scheduled")
    horizon = now - grace
    due_at = schedule.latest_before(horizon)
    if due_at is None:
        return Overdue(False, reason="not due yet")
    if running:
        return Overdue(False, due_at, "running")
    if not ever_succeeded:
        if history_started_at is None:
            return Overdue(False, due_at, "no history")
        fired = schedule.fires_between(history_started_at, horizon, limit=2)
        if fired < 2:
            return Overdue(False, due_at, "new")
        return Overdue(True, due_at, "never succeeded")
    if last_success_started_at is not None and last_success_started_at >= due_at - START_TOLERANCE:
        return Overdue(False, due_at, "ran")
    return Overdue(True, due_at, "missed")
