"""Lexical safety of storage keys, shared by the local and S3 stores.

``file_path`` comes from a database row that another application wrote, so files cleanup
treats it as untrusted input to a delete. Anything that could name a file outside the
storage root is refused here, before any store sees it, and both stores refuse the same
escapes. This is only the lexical half: the local store must still refuse to follow
symlinks out of its root, which no string check can see.

The two stores differ in what a key *means*. On a filesystem ``a//b`` and ``a/./b`` are
``a/b``, so :func:`safe_key` normalises. On S3 a key is a literal string: ``a//b.json``,
``a/./b.json`` and ``a/b.json`` are three different objects, and normalising would delete
the wrong one (perhaps the file of a live export). :func:`s3_key` therefore uses the key
exactly as stored, after the prefix, and only refuses what could leave the prefix.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePath(ValueError):
    """A storage key that could escape the storage root; the message says why."""


def safe_key(file_path: str) -> PurePosixPath:
    """The normalised relative key (``./a//b`` gives ``a/b``); UnsafePath if it could escape.

    For a filesystem only: S3 keys are literal (see :func:`s3_key`).
    """
    _refuse_escapes(file_path)
    parts = [part for part in file_path.split("/") if part not in ("", ".")]
    if not parts:
        raise UnsafePath(f"storage key {file_path!r} names the storage root itself")
    return PurePosixPath(*parts)


def _refuse_escapes(file_path: str) -> None:
    if not file_path.strip():
        raise UnsafePath("empty storage key")
    if "\x00" in file_path:
        raise UnsafePath(f"storage key {file_path!r} contains a NUL byte")
    if "\\" in file_path:
        # A backslash is a separator on Windows and in some S3 gateways: ``..\\x`` escapes.
        raise UnsafePath(f"storage key {file_path!r} contains a backslash")
    if _DRIVE.match(file_path):
        raise UnsafePath(f"storage key {file_path!r} starts with a Windows drive")
    if file_path.startswith("/"):
        raise UnsafePath(f"storage key {file_path!r} is absolute")
    if ".." in file_path.split("/"):
        raise UnsafePath(f"storage key {file_path!r} contains a '..' component")


def _normalise_prefix(prefix: str) -> str:
    # Users write ``exports``, ``exports/`` or ``/exports/`` for the same prefix.
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    try:
        return f"{safe_key(stripped)}/"
    except UnsafePath as exc:
        raise UnsafePath(f"S3 prefix {prefix!r} is unsafe: {exc}") from None


def s3_key(prefix: str, file_path: str) -> str:
    """The object key of ``file_path`` under ``prefix``, the key itself byte for byte.

    It always starts with the prefix. Refused: what :func:`safe_key` refuses as an escape
    (``..`` segments, absolute keys, backslashes, drives, NUL) and a key with nothing but
    empty and ``.`` segments, which names no object of its own.
    """
    _refuse_escapes(file_path)
    if all(part in ("", ".") for part in file_path.split("/")):
        raise UnsafePath(f"storage key {file_path!r} names the storage prefix itself")
    return _normalise_prefix(prefix) + file_path
