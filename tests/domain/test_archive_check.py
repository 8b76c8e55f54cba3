"""Archive objects checked as streams: gzip, lines, ids, catalog."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable

import pytest

from opsctl.domain.archive_check import (
    BadObject,
    Expected,
    LineCheck,
    ObjectStream,
    against_catalog,
    name_range,
)

BODY = b'{"id":1,"t":"a"}\n{"id":2,"t":"b,\\"c"}\n{"t":"x","id":3}\n'


def read(data: bytes, chunk: int = 7, low: int = 1, high: int = 3,
         full: bool = False) -> tuple[ObjectStream, LineCheck]:
    stream = ObjectStream(data[i:i + chunk] for i in range(0, len(data), chunk))
    lines = LineCheck("id", low, high, full=full)
    for block in stream.blocks():
        lines.block(block)
    return stream, lines


@pytest.mark.parametrize("full", [False, True])
def test_a_good_object_in_tiny_chunks(full: bool) -> None:
    data = gzip.compress(BODY, mtime=0)
    stream, lines = read(data, full=full)
    assert (lines.rows, lines.first_id, lines.last_id) == (3, 1, 3)
    assert stream.sha256 == hashlib.sha256(data).hexdigest() and stream.size == len(data)
    against_catalog(stream, lines, Expected(1, 3, 3, len(data), stream.sha256))


def test_two_gzip_members_read_as_one_object() -> None:
    data = gzip.compress(BODY[:17], mtime=0) + gzip.compress(BODY[17:], mtime=0)
    assert read(data)[1].rows == 3


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda d: d[:-4], "truncated"),
    (lambda d: d[:10] + bytes([d[10] ^ 0xFF]) + d[11:], "gzip"),
    (lambda d: b"", "empty"),
    (lambda d: b"plain text\n", "gzip"),
])
def test_damaged_bytes(damage: Callable[[bytes], bytes], reason: str) -> None:
    with pytest.raises(BadObject, match=reason):
        read(damage(gzip.compress(BODY, mtime=0)), low=1, high=3)


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"id":1}\n{"id":1}\n', "not after"),
    (b'{"id":2}\n{"id":1}\n', "not after"),
    (b'{"id":9}\n', "outside"),
    (b'{"id":1}\n{"x":2}\n', "no integer"),
    (b'{"id":1}\n[1]\n', "not a JSON object"),
    (b'{"id":1}\nnope\n', "not JSON"),
    (b'{"id":1}\n{"id":2}', "no line end"),
])
def test_bad_lines(body: bytes, reason: str) -> None:
    with pytest.raises(BadObject, match=reason):
        read(gzip.compress(body), low=1, high=3)


def test_catalog_mismatch() -> None:
    data = gzip.compress(BODY, mtime=0)
    stream, lines = read(data)
    with pytest.raises(BadObject, match="the catalog recorded 4"):
        against_catalog(stream, lines, Expected(1, 3, 4, len(data), stream.sha256))
    with pytest.raises(BadObject, match="sha256"):
        against_catalog(stream, lines, Expected(1, 3, 3, len(data), "0" * 64))


def test_names() -> None:
    assert name_range("export_logs/000000000001-000000000007.jsonl.gz") == (1, 7)
    assert name_range("000000000001-000000000007-abc.jsonl.gz") == (1, 7)
    assert name_range("_inflight.json.gz") is None
    assert name_range("9-1.jsonl.gz") is None
