"""Archive object bytes: ISA-L's igzip where installed, zlib otherwise (or when asked),
both plain gzip that the real ``gzip -d`` reads, and the same content recognised whichever
compressor wrote it."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from opsctl.adapters.archive import objects

PAYLOAD = b"".join(
    b'{"id":%d,"user_id":"user-%d","error_message":"t\\u00e9 \\"q\\" \\\\ %s"}\n'
    % (i, i % 7, "é".encode() * (i % 5)) for i in range(2000))


@pytest.fixture
def zlib_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(objects.BACKEND_VARIABLE, "zlib")
    objects._igzip.cache_clear()
    yield
    monkeypatch.delenv(objects.BACKEND_VARIABLE)
    objects._igzip.cache_clear()


def gunzip(data: bytes) -> bytes:
    gzip_binary = shutil.which("gzip")
    assert gzip_binary is not None, "the gzip binary is needed: archives must stay readable"
    return subprocess.run([gzip_binary, "-dc"], input=data, capture_output=True,
                          check=True).stdout


def test_isal_writes_level_one_and_gzip_reads_it() -> None:
    assert objects.backend(1) == "isal"  # a dependency: installed wherever opsctl is

    data, digest = objects.compress(PAYLOAD, 1)

    assert data != gzip.compress(PAYLOAD, compresslevel=1, mtime=0)  # not zlib's bytes
    assert gunzip(data) == PAYLOAD
    assert digest == hashlib.sha256(data).hexdigest()
    assert data[4:8] == b"\0\0\0\0"  # mtime 0: the same rows, the same bytes
    assert objects.compress(PAYLOAD, 1) == (data, digest)


def test_levels_above_three_stay_with_zlib() -> None:
    data, _ = objects.compress(PAYLOAD, 6)

    assert objects.backend(6) == "zlib"
    assert data == gzip.compress(PAYLOAD, compresslevel=6, mtime=0)


def test_without_isal_zlib_writes_every_level(zlib_only: None) -> None:
    data, digest = objects.compress(PAYLOAD, 1)

    assert objects.backend(1) == "zlib"
    assert data == gzip.compress(PAYLOAD, compresslevel=1, mtime=0)
    assert gunzip(data) == PAYLOAD
    assert digest == hashlib.sha256(data).hexdigest()


def test_the_same_content_is_recognised_whichever_compressor_wrote_it() -> None:
    by_isal, _ = objects.compress(PAYLOAD, 1)
    by_zlib = gzip.compress(PAYLOAD, compresslevel=1, mtime=0)

    assert by_isal != by_zlib
    assert objects.holds(by_isal, PAYLOAD) and objects.holds(by_zlib, PAYLOAD)
    assert not objects.holds(by_zlib, PAYLOAD + b'{"id":2000}\n')
    assert not objects.holds(by_zlib[:-4], PAYLOAD)  # truncated: not intact gzip
    assert not objects.holds(b"someone else's object", PAYLOAD)
