"""One pass over two streams sorted by the same key: the merge join of ``files audit``.

Both streams must come in the same order (UTF-8 byte order of the key, which for Python
``str`` is code point order). A stream that goes backwards would make every key after it
look unmatched, and unmatched stored files are what an audit may delete, so the merge
checks the order of both sides as it goes and stops with :class:`OutOfOrder` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

A = TypeVar("A")
B = TypeVar("B")


class OutOfOrder(ValueError):
    """A stream was not sorted as promised; nothing after this point can be trusted."""


class _Side(Generic[A]):
    def __init__(self, items: Iterable[A], key: Callable[[A], str], name: str) -> None:
        self._items = iter(items)
        self._key = key
        self._name = name
        self.item: A | None = None
        self.key: str | None = None
        self.advance()

    def advance(self) -> None:
        previous = self.key
        for item in self._items:
            key = self._key(item)
            if previous is not None and key <= previous:
                raise OutOfOrder(f"{self._name} is not in byte order (or has a duplicate): "
                                 f"{key!r} came after {previous!r}")
            self.item, self.key = item, key
            return
        self.item, self.key = None, None


def merge_join(left: Iterable[A], right: Iterable[B], left_key: Callable[[A], str],
               right_key: Callable[[B], str], *, names: tuple[str, str] = ("left", "right"),
               ) -> Iterator[tuple[A | None, B | None]]:
    """Pairs ``(a, b)`` with equal keys, ``(a, None)`` and ``(None, b)`` for keys only one
    side has, in key order; each side's keys must be strictly increasing."""
    lhs = _Side(left, left_key, names[0])
    rhs = _Side(right, right_key, names[1])
    while lhs.key is not None or rhs.key is not None:
        if rhs.key is None or (lhs.key is not None and lhs.key < rhs.key):
            yield lhs.item, None
            lhs.advance()
        elif lhs.key is None or rhs.key < lhs.key:
            yield None, rhs.item
            rhs.advance()
        else:
            yield lhs.item, rhs.item
            lhs.advance()
            rhs.advance()
