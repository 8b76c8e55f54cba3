"""``--report PATH``: one JSON object per line, written to a temporary file beside PATH
and renamed over it when complete, so a reader never sees half a report and a failed run
leaves the previous report in place."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from opsctl.errors import UsageError


class JsonLinesReport:
    """``FindingReport`` into a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self._handle: IO[str] | None = self._temporary.open("w", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--report {path}: {exc.strerror or exc}") from exc

    def write(self, finding: Mapping[str, object]) -> None:
        assert self._handle is not None
        self._handle.write(json.dumps(finding, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        handle.close()
        try:
            os.replace(self._temporary, self.path)
        except OSError as exc:
            raise UsageError(f"--report {self.path}: {exc.strerror or exc}") from exc

    def discard(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        handle.close()
        self._temporary.unlink(missing_ok=True)
