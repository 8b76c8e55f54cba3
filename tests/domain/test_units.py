import pytest

from opsctl.domain.units import human_bytes, human_count, human_ms, human_percent


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (None, "—"),
        (0, "0 B"),
        (1, "1 B"),
        (512, "512 B"),
        (999, "999 B"),
        (999.4, "999 B"),
        (1000, "1.0 kB"),
        (1500, "1.5 kB"),
        (3_400_000, "3.4 MB"),
        (3_449_999, "3.4 MB"),
        (999_949, "999.9 kB"),
        (999_950, "1.0 MB"),  # rounds up across the boundary, never "1000.0 kB"
        (1_200_000_000, "1.2 GB"),
        (5 * 10**12, "5.0 TB"),
        (2 * 10**18, "2.0 EB"),
        (3 * 10**21, "3000.0 EB"),  # no larger unit: stays in the largest
        (-512, "-512 B"),
        (-3_400_000, "-3.4 MB"),
    ],
)
def test_human_bytes(n: float | None, expected: str) -> None:
    assert human_bytes(n) == expected


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (None, "—"),
        (0, "0 ms"),
        (850, "850 ms"),
        (849.6, "850 ms"),
        (999.4, "999 ms"),
        (999.6, "1.0 s"),
        (1000, "1.0 s"),
        (1234, "1.2 s"),
        (59_940, "59.9 s"),
        (59_960, "1m 00s"),
        (60_000, "1m 00s"),
        (125_000, "2m 05s"),
        (3_599_000, "59m 59s"),
        (3_599_600, "1h 00m"),
        (3_720_000, "1h 02m"),
        (86_340_000, "23h 59m"),
        (86_399_000, "1d 00h"),
        (97_200_000, "1d 03h"),
        (-850, "-850 ms"),
        (-125_000, "-2m 05s"),
    ],
)
def test_human_ms(ms: float | None, expected: str) -> None:
    assert human_ms(ms) == expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (None, "—"),
        (0.85, "85.0 %"),
        (0, "0.0 %"),
        (1, "100.0 %"),
        (0.1234, "12.3 %"),
        (0.00049, "0.0 %"),
    ],
)
def test_human_percent(ratio: float | None, expected: str) -> None:
    assert human_percent(ratio) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0"), (999, "999"), (1000, "1,000"), (1_234_567, "1,234,567"), (-1234, "-1,234")],
)
def test_human_count(n: int, expected: str) -> None:
    assert human_count(n) == expected
