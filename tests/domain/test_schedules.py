"""Cron parsing and the dead man's switch, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opsctl.domain.schedules import CronSchedule, InvalidCron, judge

GRACE = timedelta(minutes=10)
CREATED = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("61 * * * *", "outside 0-59"),
        ("* * * * * *", "6 fields"),
        ("* * * *", "4 fields"),
        ("@reboot", "@reboot"),
        ("@hourly", "macros"),
        ("0 0 L * *", "day-of-month field"),
        ("0 0 * * 5#3", "day-of-week field"),
        ("0 0 ? * *", "day-of-month field"),
        ("0 25 * * *", "outside 0-23"),
        ("0 0 0 * *", "outside 1-31"),
        ("0 0 * 13 *", "outside 1-12"),
        ("0 0 * * 8", "outside 0-7"),
        ("10-5 * * * *", "backwards"),
        ("*/0 * * * *", "step"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 * foo *", "not a month value"),
    ],
)
def test_refuses_what_some_target_would_run_differently(text: str, words: str) -> None:
    with pytest.raises(InvalidCron, match=words):
        CronSchedule.parse(text)


def test_normalises_spaces_and_accepts_names_ranges_steps_lists() -> None:
    schedule = CronSchedule.parse("  5-50/15   1,13 *  jan-mar  mon-fri ")
    assert schedule.expression == "5-50/15 1,13 * jan-mar mon-fri"
    assert schedule.fields[0] == {5, 20, 35, 50}
    assert schedule.fields[3] == {1, 2, 3}
    assert schedule.fields[4] == {1, 2, 3, 4, 5}


def test_sunday_is_0_and_7() -> None:
    assert CronSchedule.parse("0 0 * * 7").fields[4] == {0}
    assert CronSchedule.parse("0 0 * * 5-7").fields[4] == {0, 5, 6}


def test_next_runs_are_strictly_after_and_utc() -> None:
    schedule = CronSchedule.parse("*/5 * * * *")
    assert schedule.next_runs(at(26, 12, 5), 3) == [at(26, 12, 10), at(26, 12, 15),
                                                    at(26, 12, 20)]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # 1st of the month OR a Monday: Nov 30 2026 is a Monday, Dec 1 a Tuesday.
    schedule = CronSchedule.parse("0 0 1 * mon")
    assert schedule.days_either
    assert schedule.next_runs(at(26, 12), 4) == [
        at(30, 0), datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC),
        datetime(2026, 12, 14, tzinfo=UTC)]


def test_one_restricted_day_field_means_only_that_one() -> None:
    schedule = CronSchedule.parse("0 0 * * mon")
    assert not schedule.days_either
    assert schedule.next_runs(at(26, 12), 2) == [at(30, 0), datetime(2026, 12, 7, tzinfo=UTC)]
    monthly = CronSchedule.parse("0 3 1 * *")
    assert monthly.next_runs(at(26, 12), 1) == [datetime(2026, 12, 1, 3, tzinfo=UTC)]


# --- judge --------------------------------------------------------------------------------

HOURLY = CronSchedule.parse("0 * * * *")


def verdict(now: datetime, *, started: datetime | None = None, ever: bool = True,
            running: bool = False, schedule: CronSchedule | None = HOURLY,
            created: datetime | None = CREATED) -> bool:
    return judge(schedule, GRACE, now, last_success_started_at=started, ever_succeeded=ever,
                 running=running, history_started_at=created).overdue


def test_not_overdue_within_grace_of_a_missed_fire() -> None:
    # Last success at 10:00; 11:00 missed. Exactly at 11:10 the fire is not yet *more*
    # than grace ago; one second later it is.
    assert not verdict(at(26, 11, 10), started=at(26, 10, 0))
    assert verdict(at(26, 11, 10, 1), started=at(26, 10, 0))


def test_a_run_started_up_to_a_minute_before_the_fire_counts() -> None:
    now = at(26, 11, 30)
    assert not verdict(now, started=at(26, 11, 0))
    assert not verdict(now, started=at(26, 10, 59))  # exactly T - 1 minute
    assert verdict(now, started=at(26, 10, 58, 59))


def test_exactly_at_the_fire_time() -> None:
    # At 11:00:00 the 11:00 fire has not happened more than grace ago: T is 10:00.
    assert not verdict(at(26, 11, 0), started=at(26, 10, 0, 5))
    assert verdict(at(26, 11, 0), started=at(26, 9, 0, 5))


def test_a_running_job_is_never_overdue() -> None:
    assert verdict(at(26, 15), started=at(26, 10))
    assert not verdict(at(26, 15), started=at(26, 10), running=True)
    assert not verdict(at(26, 15), ever=False, started=None, running=True)


def test_never_succeeded_counts_two_fires_after_the_tables_were_created() -> None:
    created = at(26, 10, 30)
    # Fires after creation: 11:00, 12:00. At 12:10 the second is not yet past grace.
    assert not verdict(at(26, 11, 30), ever=False, created=created)
    assert not verdict(at(26, 12, 10), ever=False, created=created)
    assert verdict(at(26, 12, 10, 1), ever=False, created=created)


def test_a_fire_at_the_creation_instant_does_not_count() -> None:
    created = at(26, 11, 0)
    assert not verdict(at(26, 12, 10, 1), ever=False, created=created)
    assert verdict(at(26, 13, 10, 1), ever=False, created=created)


def test_without_tables_nothing_is_overdue() -> None:
    assert not verdict(at(26, 15), ever=False, created=None)


def test_an_unscheduled_job_is_never_overdue() -> None:
    assert not verdict(at(26, 15), ever=False, schedule=None)


def test_not_due_before_its_first_fire_time_ever() -> None:
    never_yet = CronSchedule.parse("0 0 1 1 *")
    assert judge(never_yet, GRACE, datetime(2000, 1, 1, 0, 5, tzinfo=UTC),
                 last_success_started_at=None, ever_succeeded=False, running=False,
                 history_started_at=CREATED).due_at == datetime(1999, 1, 1, tzinfo=UTC)


def test_day_of_month_and_day_of_week_combination_judged_on_either_day() -> None:
    schedule = CronSchedule.parse("0 6 1 * mon")
    # Mon Nov 30 06:00 fired; a success on Sun Nov 1 is not enough on Nov 30 at 07:00.
    assert verdict(at(30, 7), started=at(1, 6), schedule=schedule)
    assert not verdict(at(30, 7), started=at(30, 6, 0, 3), schedule=schedule)
    # On Tue Nov 24 the last fire was Mon Nov 23.
    assert verdict(at(24, 12), started=at(16, 6), schedule=schedule)
    assert not verdict(at(24, 12), started=at(23, 6), schedule=schedule)


def test_monthly_job_due_on_the_first_only() -> None:
    monthly = CronSchedule.parse("0 3 1 * *")
    assert not verdict(at(26, 12), started=at(1, 3, 0, 1), schedule=monthly)
    assert verdict(datetime(2026, 12, 1, 3, 11, tzinfo=UTC), started=at(1, 3),
                   schedule=monthly)
