import math
import random
from collections.abc import Sequence

import pytest

from opsctl.domain.stats import PercentilePicker, mean, percentile_cont, safe_ratio

# Durations with a long tail, as exports have; expected values were produced by
# PostgreSQL 15's percentile_cont over the same float8 array, printed at full precision.
DURATIONS = [
    120, 150, 150, 180, 200, 210, 250, 300, 320, 400,
    450, 500, 800, 1200, 1500, 2000, 2500, 4000, 9000, 30000,
]  # fmt: skip
DURATIONS_EXPECTED = {
    0.0: 120.0,
    0.5: 425.0,
    0.95: 10050.000000000015,
    0.99: 26009.999999999975,
    1.0: 30000.0,
}


@pytest.mark.parametrize(("q", "expected"), DURATIONS_EXPECTED.items())
def test_percentile_cont_matches_postgresql_bit_for_bit(q: float, expected: float) -> None:
    assert percentile_cont(DURATIONS, q) == expected


def test_percentile_cont_of_one_to_four() -> None:
    # PostgreSQL prints 3.8499999999999996: 0.95 * 3 is not exactly 2.85 in binary.
    assert percentile_cont([1, 2, 3, 4], 0.95) == 3.8499999999999996
    assert percentile_cont([1, 2, 3, 4], 0.95) == pytest.approx(3.85)


@pytest.mark.parametrize(("q", "expected"), [(0.5, 50.5), (0.95, 95.05), (0.99, 99.01)])
def test_percentile_cont_of_one_to_hundred(q: float, expected: float) -> None:
    assert percentile_cont(range(1, 101), q) == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([42], 0.0, 42),
        ([42], 0.5, 42),
        ([42], 1.0, 42),
        ([10, 20], 0.0, 10),
        ([10, 20], 0.5, 15),
        ([10, 20], 0.95, 19.5),
        ([10, 20], 0.99, 19.9),
        ([10, 20], 1.0, 20),
        ([5, 5, 5, 5, 7], 0.25, 5),
        ([5, 5, 5, 5, 7], 0.75, 5),
        ([5, 5, 5, 5, 7], 0.95, 6.6),
    ],
)
def test_percentile_cont_small_inputs(values: list[float], q: float, expected: float) -> None:
    assert percentile_cont(values, q) == expected


def test_percentile_cont_of_nothing_is_none() -> None:
    assert percentile_cont([], 0.5) is None


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_percentile_outside_zero_one_is_rejected(q: float) -> None:
    with pytest.raises(ValueError, match="not between 0 and 1"):
        percentile_cont([1, 2, 3], q)
    with pytest.raises(ValueError, match="not between 0 and 1"):
        PercentilePicker(3, [q])


def test_exact_positions_do_not_interpolate_with_infinity() -> None:
    # (hi - lo) * 0 would be NaN; PostgreSQL returns the row itself, and so do we.
    assert percentile_cont([1.0, math.inf], 1.0) == math.inf
    assert percentile_cont([1.0, 2.0, math.inf], 0.5) == 2.0


def _pick(values: Sequence[float], qs: list[float]) -> dict[float, float | None]:
    picker = PercentilePicker(len(values), qs)
    for value in values:
        picker.feed(value)
    return picker.result()


QS = [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]


def test_picker_matches_percentile_cont_on_random_data() -> None:
    rng = random.Random(20261101)
    sizes = [1, 2, 3, 4, 5, 10, 99, 100, 101, 1000, 1001]
    for n in sizes:
        for source in ("floats", "duplicates"):
            if source == "floats":
                values = sorted(rng.uniform(0, 60_000) for _ in range(n))
            else:
                values = sorted(float(rng.randint(0, 5)) for _ in range(n))
            expected = {q: percentile_cont(values, q) for q in QS}
            assert _pick(values, QS) == expected, (n, source)


def test_picker_on_crafted_durations() -> None:
    assert _pick(DURATIONS, list(DURATIONS_EXPECTED)) == DURATIONS_EXPECTED


def test_picker_with_one_and_two_values() -> None:
    assert _pick([42], [0.5, 0.99]) == {0.5: 42, 0.99: 42}
    assert _pick([10, 20], [0.5, 0.95]) == {0.5: 15, 0.95: 19.5}


def test_picker_with_no_values_gives_none_for_each_percentile() -> None:
    assert PercentilePicker(0, [0.5, 0.95]).result() == {0.5: None, 0.95: None}


def test_picker_keeps_only_the_rows_it_needs() -> None:
    picker = PercentilePicker(200_000, [0.5, 0.95, 0.99])
    for index in range(200_000):
        picker.feed(index)
    assert len(picker._kept) <= 6
    assert picker.result() == {
        0.5: percentile_cont(range(200_000), 0.5),
        0.95: percentile_cont(range(200_000), 0.95),
        0.99: percentile_cont(range(200_000), 0.99),
    }


def test_picker_refuses_an_unsorted_stream() -> None:
    picker = PercentilePicker(3, [0.5])
    picker.feed(2)
    with pytest.raises(ValueError, match="not sorted ascending"):
        picker.feed(1)


def test_picker_refuses_more_values_than_announced() -> None:
    picker = PercentilePicker(1, [0.5])
    picker.feed(1)
    with pytest.raises(ValueError, match="more values than the 1 announced"):
        picker.feed(2)


def test_picker_refuses_a_result_before_the_stream_ends() -> None:
    picker = PercentilePicker(3, [0.5])
    picker.feed(1)
    with pytest.raises(ValueError, match="got 1 values, 3 were announced"):
        picker.result()


def test_picker_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        PercentilePicker(-1, [0.5])


def test_safe_ratio() -> None:
    assert safe_ratio(3, 4) == 0.75
    assert safe_ratio(0, 4) == 0.0
    assert safe_ratio(3, 0) is None
    assert safe_ratio(0, 0) is None


def test_mean() -> None:
    assert mean(3000, 4) == 750.0
    assert mean(0, 3) == 0.0
    assert mean(0, 0) is None
    assert mean(None, 0) is None  # SQL SUM over no rows
    assert mean(None, 5) is None
