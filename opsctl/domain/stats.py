"""Statistics that must agree across database backends.

PostgreSQL computes percentiles with ``percentile_cont``; SQLite has none, so the SQLite
adapter streams the sorted values through :class:`PercentilePicker`. Both paths share the
interpolation below, written exactly as PostgreSQL writes it (``lo + (hi - lo) * frac``
in double precision), so the same data gives bit-for-bit the same p95 on either backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def _check_fraction(q: float) -> None:
    if not 0.0 <= q <= 1.0:  # also rejects NaN
        raise ValueError(f"percentile {q!r} is not between 0 and 1")


def _neighbours(n: int, q: float) -> tuple[int, int, float]:
    """0-based indices of the two values around position ``(n - 1) * q``, and the fraction."""
    position = q * (n - 1)
    lo = math.floor(position)
    return lo, math.ceil(position), position - lo


def _lerp(lo_value: float, hi_value: float, fraction: float) -> float:
    # PostgreSQL skips the interpolation when both neighbours are the same row (the
    # fraction is then 0), so do we: lo + (hi - lo) * 0 is NaN when lo is infinite.
    if fraction == 0.0:
        return lo_value
    return lo_value + (hi_value - lo_value) * fraction


def percentile_cont(sorted_values: Sequence[float], q: float) -> float | None:
    """PostgreSQL's ``percentile_cont(q)`` of values already sorted ascending; None if empty."""
    _check_fraction(q)
    if not sorted_values:
        return None
    lo, hi, fraction = _neighbours(len(sorted_values), q)
    return _lerp(sorted_values[lo], sorted_values[hi], fraction)


class PercentilePicker:
    """Several ``percentile_cont`` values from one ascending stream, in O(len(qs)) memory.

    Knowing ``n`` up front (a ``COUNT(*)`` before the ``ORDER BY`` query) tells us which
    row indices each percentile needs, so only those rows are kept and a day of durations
    never has to sit in memory. The stream is checked, because a wrong ``ORDER BY`` or a
    count taken under a different filter would otherwise give a plausible wrong answer.
    """

    def __init__(self, n: int, qs: Iterable[float]) -> None:
        if n < 0:
            raise ValueError(f"value count must be >= 0, got {n}")
        self._n = n
        self._qs = tuple(qs)
        for q in self._qs:
            _check_fraction(q)
        self._plans = {q: _neighbours(n, q) for q in self._qs} if n else {}
        self._needed = {index for lo, hi, _ in self._plans.values() for index in (lo, hi)}
        self._kept: dict[int, float] = {}
        self._fed = 0
        self._previous: float | None = None

    def feed(self, value: float) -> None:
        """Take the next value of the ascending stream."""
        if self._fed >= self._n:
            raise ValueError(f"more values than the {self._n} announced")
        if self._previous is not None and value < self._previous:
            raise ValueError(f"values are not sorted ascending: {value!r} after {self._previous!r}")
        if self._fed in self._needed:
            self._kept[self._fed] = value
        self._previous = value
        self._fed += 1

    def result(self) -> dict[float, float | None]:
        """Each requested percentile; None for every one when ``n`` is 0."""
        if self._fed != self._n:
            raise ValueError(f"got {self._fed} values, {self._n} were announced")
        results: dict[float, float | None] = {}
        for q in self._qs:
            if not self._n:
                results[q] = None
                continue
            lo, hi, fraction = self._plans[q]
            results[q] = _lerp(self._kept[lo], self._kept[hi], fraction)
        return results


def safe_ratio(num: float, den: float) -> float | None:
    """``num / den``, or None when there is nothing to divide by (a rate over no exports)."""
    if den == 0:
        return None
    return num / den


def mean(total: float | None, count: int) -> float | None:
    """Average from a SQL ``SUM`` and ``COUNT``; None when nothing was counted.

    ``total`` may be None because SQL ``SUM`` over no rows is NULL, not 0.
    """
    if count == 0 or total is None:
        return None
    return total / count
