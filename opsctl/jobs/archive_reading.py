"""One archive object read whole and verified, shared by ``logs verify`` and ``logs restore``.

The object streams through :class:`~opsctl.domain.archive_check.ObjectStream` (sha256,
size, gzip) and :class:`~opsctl.domain.archive_check.LineCheck` (ids within the range its
name promises, increasing); a catalogued object is then held against its catalog row. A
restore passes a ``sink`` that receives the decompressed blocks as they are checked; it
must keep them from the table until the object has passed (a temporary table, an open
transaction), since the verdict comes only at the end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from opsctl.domain.archive_check import (
    BadObject,
    Expected,
    LineCheck,
    ObjectStream,
    against_catalog,
    name_range,
)
from opsctl.ports import ArchiveObjects, CatalogEntry, StoredObject

_LOWEST, _HIGHEST = -(2**63), 2**63 - 1

T = TypeVar("T")
R = TypeVar("R")


def read_object(
    objects: ArchiveObjects,
    obj: StoredObject,
    entry: CatalogEntry | None,
    id_column: str,
    sink: Callable[[bytes], None] | None = None,
) -> LineCheck:
    """The checked lines of ``obj``; ``BadObject`` when it fails any check."""
    promised = name_range(obj.key)
    if promised is None and entry is not None:
        promised = (entry.first_id, entry.last_id)
    low, high = promised or (_LOWEST, _HIGHEST)
    # Nothing vouches for an uncatalogued object's bytes: parse every line of it.
    lines = LineCheck(id_column, low, high, full=entry is None)
    chunks = objects.chunks(obj)
    stream = ObjectStream(chunks)
    try:
        for block in stream.blocks():
            lines.block(block)
            if sink is not None:
                sink(block)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator stopped early releases its file or connection now
    if lines.rows == 0:
        raise BadObject("no rows")
    if promised is not None and (lines.first_id, lines.last_id) != promised:
        raise BadObject(f"holds ids {lines.first_id}-{lines.last_id}, its name promises "
                        f"{promised[0]}-{promised[1]}")
    if entry is not None:
        against_catalog(stream, lines, Expected(entry.first_id, entry.last_id, entry.rows,
                                                entry.bytes, entry.sha256))
    return lines


def ordered_map(pool: ThreadPoolExecutor, work: Callable[[T], R], items: Iterable[T],
                ahead: int) -> Iterator[tuple[T, Future[R]]]:
    """``work`` over ``items`` on ``pool``, at most ``ahead`` in flight, results in order:
    a listing of any length never queues more than ``ahead`` objects."""
    flight: deque[tuple[T, Future[R]]] = deque()
    for item in items:
        flight.append((item, pool.submit(work, item)))
        if len(flight) >= ahead:
            yield flight.popleft()
    while flight:
        yield flight.popleft()
