from datetime import UTC, datetime, timedelta, timezone

import pytest

from opsctl.domain.windows import (
    Window,
    last_complete_period,
    parse_timestamp,
    resolve_window,
    trailing,
)

CEST = timezone(timedelta(hours=2))
NOW = datetime(2026, 11, 1, 10, 0, 30, tzinfo=UTC)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- Window -------------------------------------------------------------------------------


def test_window_duration_and_hours() -> None:
    window = Window(utc(2026, 11, 1, 9), utc(2026, 11, 1, 10, 30))
    assert window.duration == timedelta(minutes=90)
    assert window.hours == 1.5


def test_window_is_half_open() -> None:
    window = Window(utc(2026, 11, 1, 9), utc(2026, 11, 1, 10))
    assert window.contains(utc(2026, 11, 1, 9))
    assert window.contains(datetime(2026, 11, 1, 9, 59, 59, 999999, tzinfo=UTC))
    assert not window.contains(utc(2026, 11, 1, 10))
    assert not window.contains(datetime(2026, 11, 1, 8, 59, 59, 999999, tzinfo=UTC))


def test_window_converts_other_zones_to_utc() -> None:
    window = Window(datetime(2026, 11, 1, 11, tzinfo=CEST), datetime(2026, 11, 1, 12, tzinfo=CEST))
    assert window.start == utc(2026, 11, 1, 9)
    assert window.start.tzinfo is UTC
    assert window.end.tzinfo is UTC
    assert window == Window(utc(2026, 11, 1, 9), utc(2026, 11, 1, 10))


def test_window_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="window start must be timezone-aware"):
        Window(datetime(2026, 11, 1, 9), utc(2026, 11, 1, 10))
    with pytest.raises(ValueError, match="window end must be timezone-aware"):
        Window(utc(2026, 11, 1, 9), datetime(2026, 11, 1, 10))


@pytest.mark.parametrize("end_hour", [9, 8])
def test_window_refuses_empty_or_reversed(end_hour: int) -> None:
    with pytest.raises(ValueError, match="must be before its end"):
        Window(utc(2026, 11, 1, 9), utc(2026, 11, 1, end_hour))


def test_window_is_frozen() -> None:
    window = Window(utc(2026, 11, 1, 9), utc(2026, 11, 1, 10))
    with pytest.raises(AttributeError):
        window.start = utc(2026, 11, 1, 8)  # type: ignore[misc]


# --- last_complete_period ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (utc(2026, 11, 1, 10, 0, 30), utc(2026, 11, 1, 9), utc(2026, 11, 1, 10)),
        (utc(2026, 11, 1, 10, 0, 0), utc(2026, 11, 1, 9), utc(2026, 11, 1, 10)),
        (
            datetime(2026, 11, 1, 10, 59, 59, 999999, tzinfo=UTC),
            utc(2026, 11, 1, 9),
            utc(2026, 11, 1, 10),
        ),
        (utc(2026, 11, 1, 0, 5), utc(2026, 10, 31, 23), utc(2026, 11, 1, 0)),
        (utc(2027, 1, 1, 0, 0), utc(2026, 12, 31, 23), utc(2027, 1, 1, 0)),
    ],
)
def test_last_complete_hour(now: datetime, start: datetime, end: datetime) -> None:
    assert last_complete_period(now, "hourly") == Window(start, end)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (utc(2026, 11, 1, 10, 0, 30), utc(2026, 10, 31), utc(2026, 11, 1)),
        (utc(2026, 11, 1, 0, 0, 0), utc(2026, 10, 31), utc(2026, 11, 1)),
        (utc(2026, 3, 1, 0, 0, 1), utc(2026, 2, 28), utc(2026, 3, 1)),
        (utc(2028, 3, 1, 12), utc(2028, 2, 29), utc(2028, 3, 1)),
    ],
)
def test_last_complete_day(now: datetime, start: datetime, end: datetime) -> None:
    assert last_complete_period(now, "daily") == Window(start, end)


def test_last_complete_period_uses_the_utc_day_not_the_local_one() -> None:
    # 01:30 in UTC+2 on 2 Nov is still 1 Nov in UTC, so the last complete UTC day is 31 Oct.
    now = datetime(2026, 11, 2, 1, 30, tzinfo=CEST)
    assert last_complete_period(now, "daily") == Window(utc(2026, 10, 31), utc(2026, 11, 1))


def test_last_complete_hour_ignores_dst_transitions() -> None:
    # 2026-10-25 is the end of summer time in Europe; UTC hours are all 60 minutes long.
    window = last_complete_period(utc(2026, 10, 25, 1, 15), "hourly")
    assert window == Window(utc(2026, 10, 25, 0), utc(2026, 10, 25, 1))
    assert window.hours == 1.0
    day = last_complete_period(utc(2026, 10, 26, 3), "daily")
    assert day.hours == 24.0


def test_last_complete_period_is_stable_across_reruns_within_the_hour() -> None:
    windows = {last_complete_period(utc(2026, 11, 1, 10, minute), "hourly") for minute in range(60)}
    assert windows == {Window(utc(2026, 11, 1, 9), utc(2026, 11, 1, 10))}


def test_last_complete_period_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        last_complete_period(datetime(2026, 11, 1, 10), "hourly")


def test_last_complete_period_refuses_unknown_period() -> None:
    with pytest.raises(
        ValueError, match=r"unknown period 'weekly'; expected one of: hourly, daily"
    ):
        last_complete_period(NOW, "weekly")  # type: ignore[arg-type]


# --- trailing -------------------------------------------------------------------------------


def test_trailing_window_ends_now() -> None:
    assert trailing(NOW, timedelta(minutes=15)) == Window(
        datetime(2026, 11, 1, 9, 45, 30, tzinfo=UTC), NOW
    )


@pytest.mark.parametrize("length", [timedelta(0), timedelta(seconds=-1)])
def test_trailing_refuses_non_positive_length(length: timedelta) -> None:
    with pytest.raises(ValueError, match="window length must be positive"):
        trailing(NOW, length)


def test_trailing_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        trailing(datetime(2026, 11, 1, 10), timedelta(hours=1))


# --- parse_timestamp --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T10:00:00Z", utc(2026, 11, 1, 10)),
        ("2026-11-01T10:00:00z", utc(2026, 11, 1, 10)),
        ("2026-11-01T10:00:00", utc(2026, 11, 1, 10)),
        ("2026-11-01 10:00", utc(2026, 11, 1, 10)),
        ("2026-11-01", utc(2026, 11, 1)),
        ("2026-11-01T12:00:00+02:00", utc(2026, 11, 1, 10)),
        ("2026-11-01T05:00:00-05:00", utc(2026, 11, 1, 10)),
        ("2026-11-01T00:30:00+01:00", utc(2026, 10, 31, 23, 30)),
        (
            "2026-11-01T10:00:00.250Z",
            datetime(2026, 11, 1, 10, 0, 0, 250000, tzinfo=UTC),
        ),
        ("  2026-11-01T10:00:00Z\n", utc(2026, 11, 1, 10)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yesterday",
        "Z",
        "2026-13-01",
        "2026-11-01T25:00",
        "1h",
        "2026-11-01T10:00+02:00Z",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid timestamp .*; expected ISO 8601") as info:
        parse_timestamp(text)
    assert repr(text) in str(info.value)


# --- resolve_window -------------------------------------------------------------------------


def test_resolve_defaults_to_last_complete_period() -> None:
    assert resolve_window(NOW, "hourly", None, None, None) == Window(
        utc(2026, 11, 1, 9), utc(2026, 11, 1, 10)
    )
    assert resolve_window(NOW, "daily", None, None, None) == Window(
        utc(2026, 10, 31), utc(2026, 11, 1)
    )


def test_resolve_window_gives_trailing_window_ending_now() -> None:
    assert resolve_window(NOW, "daily", timedelta(hours=1), None, None) == Window(
        datetime(2026, 11, 1, 9, 0, 30, tzinfo=UTC), NOW
    )


def test_resolve_since_until() -> None:
    window = resolve_window(NOW, "hourly", None, utc(2026, 10, 1), utc(2026, 10, 2))
    assert window == Window(utc(2026, 10, 1), utc(2026, 10, 2))


def test_resolve_since_alone_runs_until_now() -> None:
    assert resolve_window(NOW, "hourly", None, utc(2026, 11, 1), None) == Window(
        utc(2026, 11, 1), NOW
    )


def test_resolve_since_in_other_zone_is_converted() -> None:
    since = datetime(2026, 11, 1, 2, tzinfo=CEST)
    assert resolve_window(NOW, "hourly", None, since, None).start == utc(2026, 11, 1, 0)


def test_resolve_refuses_window_with_since() -> None:
    with pytest.raises(ValueError, match="--window cannot be combined with --since/--until"):
        resolve_window(NOW, "hourly", timedelta(hours=1), utc(2026, 11, 1), None)


def test_resolve_refuses_window_with_until() -> None:
    with pytest.raises(ValueError, match="--window cannot be combined"):
        resolve_window(NOW, "hourly", timedelta(hours=1), None, utc(2026, 11, 1))


def test_resolve_refuses_until_without_since() -> None:
    with pytest.raises(ValueError, match="--until needs --since"):
        resolve_window(NOW, "hourly", None, None, utc(2026, 11, 1))


@pytest.mark.parametrize("until", [utc(2026, 10, 1), utc(2026, 9, 30)])
def test_resolve_refuses_since_not_before_until(until: datetime) -> None:
    with pytest.raises(ValueError, match=r"--since .* must be before --until"):
        resolve_window(NOW, "hourly", None, utc(2026, 10, 1), until)


def test_resolve_refuses_since_in_the_future() -> None:
    with pytest.raises(ValueError, match=r"--since .* must be before now"):
        resolve_window(NOW, "hourly", None, utc(2026, 11, 2), None)


def test_resolve_refuses_naive_since() -> None:
    with pytest.raises(ValueError, match="--since must be timezone-aware"):
        resolve_window(NOW, "hourly", None, datetime(2026, 10, 1), None)
