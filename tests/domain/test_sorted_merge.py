"""The merge join of two sorted streams, and its refusal of an unsorted one."""

from __future__ import annotations

import pytest

from opsctl.domain.sorted_merge import OutOfOrder, merge_join


def same(x: str) -> str:
    return x


def test_pairs_and_singles_in_order() -> None:
    pairs = list(merge_join(["a", "c", "d"], ["b", "c", "e"], same, same))
    assert pairs == [("a", None), (None, "b"), ("c", "c"), ("d", None), (None, "e")]


def test_empty_sides() -> None:
    assert list(merge_join([], ["x"], same, same)) == [(None, "x")]
    assert list(merge_join(["x"], [], same, same)) == [("x", None)]
    assert list(merge_join([], [], same, same)) == []


@pytest.mark.parametrize(("left", "right"), [(["b", "a"], []), ([], ["a", "a"])])
def test_out_of_order_stops(left: list[str], right: list[str]) -> None:
    with pytest.raises(OutOfOrder):
        list(merge_join(left, right, same, same, names=("listing", "table")))


def test_byte_order_is_code_point_order() -> None:
    keys = ["Z", "a", "a-b", "a/x", "é", "😀"]
    assert keys == sorted(keys, key=lambda k: k.encode())
    assert list(merge_join(keys, keys, same, same)) == [(k, k) for k in keys]
