"""The deletion guard's decision, on crafted counts."""

from __future__ import annotations

import pytest

from opsctl.domain.deletion_guard import GuardLimits, judge

LOGS = GuardLimits(max_delete=None, guard_min=100, max_delete_fraction=0.9,
                   anomaly_factor=10)


def never() -> list[int]:
    raise AssertionError("must not be asked below guard_min")


def test_nothing_set_lets_any_count_through() -> None:
    assert judge(10**9, GuardLimits(guard_min=10**10)) is None


@pytest.mark.parametrize(("count", "cap", "trips"), [(5, 5, False), (6, 5, True),
                                                     (0, 0, False), (1, 0, True)])
def test_max_delete_always_applies(count: int, cap: int, trips: bool) -> None:
    trip = judge(count, GuardLimits(max_delete=cap, guard_min=10**6))
    assert (trip is not None) == trips
    if trip:
        assert (trip.limit_kind, trip.would_delete, trip.limit) == ("max_delete", count, cap)


def test_relative_limits_wait_for_guard_min() -> None:
    assert judge(100, LOGS, table_rows=lambda: 100, baseline=never) is None


def test_fraction_of_the_table() -> None:
    trip = judge(901, LOGS, table_rows=lambda: 1000, baseline=lambda: [])
    assert trip is not None
    assert (trip.limit_kind, trip.would_delete, trip.limit) == ("max_delete_fraction", 901, 900)
    assert judge(900, LOGS, table_rows=lambda: 1000, baseline=lambda: []) is None


def test_anomaly_needs_three_runs_and_uses_their_median() -> None:
    assert judge(5000, LOGS, baseline=lambda: [10, 20]) is None
    trip = judge(201, LOGS, baseline=lambda: [10, 20, 500])  # median 20 -> limit 200
    assert trip is not None
    assert (trip.limit_kind, trip.limit) == ("anomaly", 200)
    assert judge(200, LOGS, baseline=lambda: [10, 20, 500]) is None


def test_anomaly_reads_only_the_last_ten_runs() -> None:
    runs = [1000] * 10 + [1] * 20  # newest first: older small runs are ignored
    assert judge(9999, LOGS, baseline=lambda: runs) is None


def test_max_delete_is_reported_before_relative_limits() -> None:
    limits = GuardLimits(max_delete=10, guard_min=0, max_delete_fraction=0.5)
    trip = judge(1000, limits, table_rows=lambda: 1000)
    assert trip is not None and trip.limit_kind == "max_delete"
