"""Export files on local disk, written by ``demo seed`` under the storage root.

Keys pass the same lexical check as files cleanup uses (``safe_key``), so a seed can only
ever write where cleanup may later delete.
"""

from __future__ import annotations

from pathlib import Path

from opsctl.domain.paths import UnsafePath, safe_key
from opsctl.errors import StorageUnavailable


class LocalExportFiles:
    """``ExportFileWriter`` on a local directory, created on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[Path] = set()  # a seed writes thousands of files into a few dirs

    @property
    def location(self) -> str:
        return str(self.root)

    def write(self, key: str, data: bytes) -> None:
        try:
            path = self.root.joinpath(*safe_key(key).parts)
        except UnsafePath as exc:
            raise StorageUnavailable(f"refusing to write {key!r}: {exc}") from exc
        try:
            if path.parent not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent)
            with path.open("wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot write {path} under the storage root: {exc.strerror or exc}"
            ) from exc
