"""The bytes of an archive object, shared by the local and S3 archives.

Objects are gzip with a zero mtime in the header, so the same rows give the same bytes
from one compressor. Level 1 is the default: on export logs it compresses about 6:1 at
several times the speed of gzip's default 6.

Levels 1 to 3 go through ISA-L's igzip (the ``isal`` package) when it is installed: on
export-log lines its level 1 measured 4.4 times faster than zlib's level 1 and compressed
slightly better (6.2:1 against 5.8:1), and its output is plain gzip that ``gzip -d`` reads.
Without the wheel (or with ``OPSCTL_ARCHIVE_GZIP=zlib``) zlib writes them. Levels 4 to 9
always go through zlib, whose higher levels compress better than igzip's highest.

Two compressors write different bytes for the same rows, so an object found already
there (a run rewriting the object of a batch it had not deleted before a crash) is
compared by its content, decompressed, never by its bytes: the same lines are the same
object whichever library wrote it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from functools import cache
from types import ModuleType

from opsctl.errors import ArchiveUnavailable

CONTENT_TYPE = "application/gzip"
# Set to ``zlib`` to write with zlib even where igzip is installed.
BACKEND_VARIABLE = "OPSCTL_ARCHIVE_GZIP"
_IGZIP_LEVELS = (1, 2, 3)


@cache
def _igzip() -> ModuleType | None:
    if os.environ.get(BACKEND_VARIABLE, "").lower() == "zlib":
        return None
    try:
        from isal import igzip
    except ImportError:
        return None
    return igzip


def backend(level: int) -> str:
    """Which library compresses at ``level``: ``isal`` or ``zlib``."""
    return "isal" if level in _IGZIP_LEVELS and _igzip() is not None else "zlib"


def compress(payload: bytes, level: int) -> tuple[bytes, str]:
    """The gzip object for ``payload`` and the sha256 (hex) of those compressed bytes."""
    igzip = _igzip() if level in _IGZIP_LEVELS else None
    if igzip is not None:
        data: bytes = igzip.compress(payload, compresslevel=level, mtime=0)
    else:
        data = gzip.compress(payload, compresslevel=level, mtime=0)
    return data, hashlib.sha256(data).hexdigest()


def decompress(data: bytes, where: str) -> bytes:
    """The content of an object; ``ArchiveUnavailable`` when it is not intact gzip (the
    CRC and length in the gzip trailer are checked)."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveUnavailable(f"archive object {where} is not valid gzip: {exc}") from exc


def holds(stored: bytes, payload: bytes) -> bool:
    """Whether a stored object is ``payload`` compressed, by whatever compressor and level
    (anything that is not intact gzip holds nothing)."""
    try:
        return gzip.decompress(stored) == payload
    except (OSError, EOFError, zlib.error):
        return False


def mismatch(where: str, expected_bytes: int, expected_sha: str, found_bytes: int,
             found_sha: str) -> ArchiveUnavailable | None:
    """The verification failure of an object read back, or None when it is what was written."""
    if (found_bytes, found_sha) == (expected_bytes, expected_sha):
        return None
    return ArchiveUnavailable(
        f"archive object {where} failed verification: wrote {expected_bytes} bytes "
        f"sha256 {expected_sha[:16]}..., read back {found_bytes} bytes sha256 "
        f"{found_sha[:16]}...; its rows were not deleted"
    )


def other_content(where: str, stored: bytes) -> ArchiveUnavailable:
    """The refusal to write where an object with other content already is."""
    return ArchiveUnavailable(
        f"archive object {where} already exists with other content ({len(stored)} bytes, "
        f"sha256 {hashlib.sha256(stored).hexdigest()[:16]}...); it is never replaced, and "
        "no row of this batch was deleted"
    )
