"""Reading an archive object as a stream and holding it against its name and the catalog.

An object is read once, whole, in chunks: the raw bytes feed the sha256 and the size, a
gzip decoder turns them into complete JSON lines, and each line's id is checked against
the range the object's name promises (increasing, no duplicates). Memory is one chunk and
one partial line, whatever the object's size.

The gzip decoder checks each member's CRC and length; an object that ends before its
trailer (truncated) or holds bytes that are not gzip is a :class:`BadObject`, as is a line
that is not a JSON object with an integer id.

Two depths of line checking: ``full`` parses every line (for objects nobody catalogued,
whose bytes nothing else vouches for), ``ids`` reads only the id, from the head of the
line where opsctl's archive writer puts it, and parses the line only when it is not
there. A catalogued object's sha256 vouches for the rest of its bytes: they are the bytes
that were verified when it was written.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_GZIP = 16 + zlib.MAX_WBITS
# ``<first_id>-<last_id>`` then anything that keeps names unique, then the ending.
_NAME = re.compile(r"(\d+)-(\d+)(?:[._-][^/]*)?\.jsonl\.gz")
ARCHIVE_ENDING = ".jsonl.gz"


def name_range(key: str) -> tuple[int, int] | None:
    """The id range an archive object's name promises; None for a name that promises
    none (a stray object)."""
    match = _NAME.fullmatch(key.rpartition("/")[2])
    if match is None:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    return (first, last) if first <= last else None


class BadObject(Exception):
    """An archive object that fails verification; ``reason`` says how, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ObjectStream:
    """Raw chunks of one object in, blocks of complete decompressed lines out."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._digest = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def blocks(self) -> Iterator[bytes]:
        """Decompressed bytes, each block ending at a line end; BadObject when the gzip is
        broken or truncated, or the last line has no newline."""
        decoder = zlib.decompressobj(_GZIP)
        pending = b""
        started = False
        for chunk in self._chunks:
            if not chunk:
                continue
            self.size += len(chunk)
            self._digest.update(chunk)
            data = chunk
            while data:
                if decoder.eof:  # a second gzip member follows
                    decoder = zlib.decompressobj(_GZIP)
                started = True
                try:
                    out = decoder.decompress(data)
                except zlib.error as exc:
                    raise BadObject(f"not valid gzip: {exc}") from None
                data = decoder.unused_data if decoder.eof else b""
                if out:
                    pending += out
                    cut = pending.rfind(b"\n") + 1
                    if cut:
                        yield pending[:cut]
                        pending = pending[cut:]
        if not started:
            raise BadObject("empty object (0 bytes)")
        if not decoder.eof:
            raise BadObject("truncated gzip (the stream ends before its trailer)")
        pending += decoder.flush()
        if pending:
            raise BadObject("the last line has no line end (cut short)")


@dataclass
class LineCheck:
    """The id checks of one object: within ``low`` .. ``high``, strictly increasing."""

    id_key: str
    low: int
    high: int
    full: bool = False
    rows: int = 0
    first_id: int | None = None
    last_id: int | None = None

    def __post_init__(self) -> None:
        self._prefix = b'{"' + self.id_key.encode() + b'":'

    def block(self, block: bytes) -> None:
        """Check every line of a block (complete lines, as :meth:`ObjectStream.blocks`
        yields them)."""
        prefix, width = self._prefix, len(self._prefix)
        last = self.last_id
        rows = self.rows
        for line in block.split(b"\n"):
            if not line:
                continue  # the split's tail after the block's last line end
            rows += 1
            row_id: int | None = None
            if not self.full and line.startswith(prefix):
                end = line.find(b",", width)
                try:
                    row_id = int(line[width:end if end > 0 else -1])
                except ValueError:
                    row_id = None
            if row_id is None:
                row_id = self._parsed_id(line, rows)
            if last is not None and row_id <= last:
                raise BadObject(f"line {rows}: id {row_id} is not after the previous id {last}")
            if not self.low <= row_id <= self.high:
                raise BadObject(f"line {rows}: id {row_id} is outside the object's range "
                                f"{self.low}-{self.high}")
            if self.first_id is None:
                self.first_id = row_id
            last = row_id
        self.rows = rows
        self.last_id = last

    def _parsed_id(self, line: bytes, number: int) -> int:
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise BadObject(f"line {number} is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise BadObject(f"line {number} is not a JSON object")
        value = row.get(self.id_key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadObject(f"line {number} has no integer {self.id_key!r}")
        return value


@dataclass(frozen=True)
class Expected:
    """What the catalog recorded for an object."""

    first_id: int
    last_id: int
    rows: int
    bytes: int
    sha256: str


def against_catalog(stream: ObjectStream, lines: LineCheck, expected: Expected) -> None:
    """BadObject unless what was read is what the catalog recorded."""
    if stream.sha256 != expected.sha256 or stream.size != expected.bytes:
        raise BadObject(
            f"{stream.size} bytes sha256 {stream.sha256[:16]}..., the catalog recorded "
            f"{expected.bytes} bytes sha256 {expected.sha256[:16]}...")
    if lines.rows != expected.rows:
        raise BadObject(f"{lines.rows} rows, the catalog recorded {expected.rows}")
    if (lines.first_id, lines.last_id) != (expected.first_id, expected.last_id):
        raise BadObject(f"ids {lines.first_id}-{lines.last_id}, the catalog recorded "
                        f"{expected.first_id}-{expected.last_id}")
