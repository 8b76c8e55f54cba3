"""Writing a page where a web server reads it: checked first, replaced atomically.

A web server may serve the page at any moment, so it must never see half of one: the page
goes to a temporary file in the same directory (same filesystem, so the rename is atomic)
and replaces the old page in one ``rename``. A path that cannot take the page is the
user's path problem (64), found before any database work, and leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from opsctl.errors import UsageError

PAGE_MODE = 0o644  # served by a web server running as another user


def check_page_path(path: Path) -> Path:
    """The page's path, once its directory is known to exist and to accept a new file."""
    target = path.expanduser()
    parent = target.parent
    if target.is_dir():
        raise UsageError(f"--html {path}: is a directory; give the page's file name")
    if not parent.is_dir():
        raise UsageError(f"--html {path}: directory {parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".opsctl-page-", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"--html {path}: cannot write in {parent}: "
                         f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
    return target


def write_page(path: Path, html: str) -> None:
    """Replace ``path`` with ``html`` in one rename; on any failure no file is left."""
    target = path.expanduser()
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".opsctl-page-", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"--html {path}: cannot write in {target.parent}: "
                         f"{exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(html)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, PAGE_MODE)
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise UsageError(f"--html {path}: cannot write the page: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
