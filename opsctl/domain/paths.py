"""Lexical safety of storage keys, shared by the local and S3 stores.

``file_path`` comes from a database row that another application wrote, so files cleanup
treats it as untrusted input to a delete. Anything that could name a file outside the
storage root is refused here, before any store sees it, and both stores get the same
verdict for the same key. This is only the lexical half: the local store must still
refuse to follow symlinks out of its root, which no string check can see.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePath(ValueError):
    """A storage key that could escape the storage root; the message says why."""


def safe_key(file_path: str) -> PurePosixPath:
    """The normalised relative key (``./a//b`` gives ``a/b``); UnsafePath if it could escape."""
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
    parts = [part for part in file_path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"storage key {file_path!r} contains a '..' component")
    if not parts:
        raise UnsafePath(f"storage key {file_path!r} names the storage root itself")
    return PurePosixPath(*parts)


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
    """The object key of ``file_path`` under ``prefix``; it always starts with the prefix."""
    return _normalise_prefix(prefix) + str(safe_key(file_path))
