"""Writing rendered files to ``--out DIR``: all of them or none.

Everything is written into a temporary directory first (beside ``DIR`` when it does not
exist yet, inside it when it does), then moved into place by rename, so a full disk or a
permission error never leaves half a set of units behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from opsctl.errors import UsageError


def write_all(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` (name → text) into ``directory``; UsageError naming the path when the
    directory cannot be made or written. Returns the paths written."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--out {directory}: exists and is not a directory")
    fresh = not directory.exists()
    parent = directory.parent if fresh else directory
    try:
        if fresh:
            parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".opsctl-render-", dir=parent))
    except OSError as exc:
        raise UsageError(f"--out {directory}: cannot write there: "
                         f"{exc.strerror or exc}") from None
    try:
        for name, text in files.items():
            path = staging / name
            with path.open("w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            path.chmod(0o644)
        if fresh:
            staging.chmod(0o755)
            staging.rename(directory)
        else:
            for name in files:
                (staging / name).replace(directory / name)
    except OSError as exc:
        raise UsageError(f"--out {directory}: cannot write there: "
                         f"{exc.strerror or exc}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [directory / name for name in files]
