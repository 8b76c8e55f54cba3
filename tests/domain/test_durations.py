from datetime import timedelta

import pytest

from opsctl.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1m30s500ms", timedelta(minutes=1, seconds=30, milliseconds=500)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0.5s", timedelta(milliseconds=500)),
        ("0h5m", timedelta(minutes=5)),
        ("90m", timedelta(minutes=90)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        ("  15m\n", timedelta(minutes=15)),
        ("36500d", timedelta(days=36500)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "5",  # a bare number: seconds or minutes?
        "1.5",
        "h",
        "m5",
        "1x",
        "1y",
        "1 h",
        "1h 30m",
        "1h,30m",
        "-1h",
        "+1h",
        "1e3s",
        ".5h",
        "5.h",
        "1h-30m",
        "1hour",
        "PT1H",
        "１h",  # noqa: RUF001 - fullwidth digit: only ASCII digits count
        "1h\x00",
    ],
)
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*; expected e\.g\. 30s"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "   "])
def test_parse_duration_rejects_empty(text: str) -> None:
    with pytest.raises(ValueError, match="empty duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "0h0m", "0.0s", "0.0001ms"])
def test_parse_duration_rejects_zero(text: str) -> None:
    # 0.0001ms is positive on paper but below timedelta's microsecond resolution.
    with pytest.raises(ValueError, match="must be greater than zero"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999d", "36501d", "1" + "0" * 400 + "s"])
def test_parse_duration_rejects_too_long_as_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="is too long"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=7), "7d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(hours=25), "1d1h"),
        (timedelta(seconds=90.9), "1m30s"),  # whole seconds only
        (timedelta(0), "0s"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@pytest.mark.parametrize(
    "seconds", [1, 59, 60, 61, 3599, 3600, 5400, 86399, 86400, 90061, 604800, 31_536_000]
)
def test_format_parse_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("text", ["30s", "15m", "1h30m", "7d", "1d1h1m1s"])
def test_parse_format_round_trip(text: str) -> None:
    assert format_duration(parse_duration(text)) == text
