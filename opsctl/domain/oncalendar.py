"""A cron expression as systemd ``OnCalendar=`` expressions that fire at exactly the same times.

Each cron field becomes the shortest systemd form of the same set of values: ``*``, a
repetition ``a/step`` when the values run to the field's end, else a list of values and
``a..b`` ranges. Cron's one irregular rule needs two expressions: when both day-of-month
and day-of-week are restricted a day matching *either* fires, while systemd requires both,
so the timer gets one ``OnCalendar=`` per day field (a timer fires at the union of its
lines). Every expression ends in ``UTC``, like every time opsctl reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opsctl.domain.schedules import BOUNDS, CronSchedule

_SYSTEMD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


class NotExpressible(ValueError):
    """A schedule that no set of ``OnCalendar=`` lines can reproduce exactly."""


def on_calendar(schedule: CronSchedule) -> list[str]:
    """The ``OnCalendar=`` values (one, or two when cron's either-day rule applies)."""
    minute, hour, dom, month, dow = schedule.fields
    if not all((minute, hour, dom, month, dow)):
        raise NotExpressible(f"{schedule.expression!r}: a field matches no value")
    time = f"{_numbers(hour, 1)}:{_numbers(minute, 0)}:00"
    any_dom, any_dow = frozenset(range(1, 32)), frozenset(range(7))
    if schedule.days_either:
        return [_line(any_dow, dom, month, time), _line(dow, any_dom, month, time)]
    return [_line(dow, dom, month, time)]


def _line(dow: frozenset[int], dom: frozenset[int], month: frozenset[int], time: str) -> str:
    date = f"*-{_numbers(month, 3)}-{_numbers(dom, 2)}"
    days = "" if len(dow) == 7 else _weekdays(dow) + " "
    return f"{days}{date} {time} UTC"


def _numbers(values: frozenset[int], index: int) -> str:
    lo, hi = BOUNDS[index]
    ordered = sorted(values)
    if len(ordered) == hi - lo + 1:
        return "*"
    step = _repetition(ordered, hi)
    if step is not None and len(ordered) > 2:
        return f"{ordered[0]:02d}/{step}"
    return ",".join(_runs(ordered, lambda v: f"{v:02d}", ".."))


def _repetition(ordered: list[int], hi: int) -> int | None:
    """The step when ``ordered`` is ``first, first+step, ...`` up to the field's end."""
    if len(ordered) < 2:
        return None
    step = ordered[1] - ordered[0]
    expected = list(range(ordered[0], hi + 1, step))
    return step if ordered == expected else None


def _weekdays(values: frozenset[int]) -> str:
    # Monday first, as systemd counts: a Mon..Fri range reads naturally.
    monday_first = sorted(values, key=lambda d: (d - 1) % 7)
    return ",".join(_runs(monday_first, lambda d: _SYSTEMD_DAYS[d], "..",
                          key=lambda d: (d - 1) % 7))


def _runs(ordered: Iterable[int], render: Callable[[int], str], sep: str,
          key: Callable[[int], int] | None = None) -> list[str]:
    """Consecutive values (by ``key``) of three or more as ``a..b``, the rest one by one."""
    position = key or (lambda v: v)
    groups: list[list[int]] = []
    for value in ordered:
        if groups and position(value) == position(groups[-1][-1]) + 1:
            groups[-1].append(value)
        else:
            groups.append([value])
    parts: list[str] = []
    for group in groups:
        if len(group) >= 3:
            parts.append(f"{render(group[0])}{sep}{render(group[-1])}")
        else:
            parts.extend(render(v) for v in group)
    return parts
