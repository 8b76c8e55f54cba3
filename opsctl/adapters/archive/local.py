"""Log archive objects in a local directory (``file:///dir``).

Every object is written to a temporary file in the same directory and renamed over its
final name: a reader (or a run after ``kill -9``) sees the whole old object, the whole new
one, or none, never a torn file. There is one temporary name per directory, not one per
object, because only the lock holder writes here and a killed run must not leave a trail of
partial files: the next write truncates it.

Archive objects are also fsynced, file and directory, before ``write`` returns, because
their rows are deleted next and a power cut must not take the only copy. The in-flight
marker is not: losing it to a power cut can at worst leave one batch in two objects, never
lose a row, and skipping its two fsyncs halves the fsyncs per batch. (The directory fsync
of the object that follows it also makes the marker's rename durable on ext4 and XFS.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from opsctl.adapters.archive.objects import compress, decompress, mismatch
from opsctl.domain.archive_names import MARKER_NAME
from opsctl.errors import ArchiveUnavailable
from opsctl.ports import ArchivedObject

_TEMPORARY = ".opsctl-writing.tmp"
_READ_CHUNK = 1 << 20


class LocalArchive:
    """``LogArchive`` in ``directory``, created on the first write."""

    def __init__(self, directory: Path, gzip_level: int = 1) -> None:
        self.directory = directory
        self.gzip_level = gzip_level
        self.uri = directory.as_uri()

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name in (".", "..") or name == _TEMPORARY:
            raise ValueError(f"invalid archive object name {name!r}")
        return self.directory / name

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        final = self._path(name)
        data, digest = compress(payload, self.gzip_level)
        temporary = self.directory / _TEMPORARY
        durable = name != MARKER_NAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temporary, final)
            if durable:
                _fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise ArchiveUnavailable(
                f"cannot write archive object {final}: {exc.strerror or exc}"
            ) from exc
        return ArchivedObject(name, final.as_uri(), len(data), digest)

    def verify(self, written: ArchivedObject) -> None:
        path = self._path(written.name)
        digest = hashlib.sha256()
        size = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(_READ_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise ArchiveUnavailable(
                f"cannot read back archive object {path}: {exc.strerror or exc}"
            ) from exc
        failure = mismatch(str(path), written.bytes, written.sha256, size, digest.hexdigest())
        if failure is not None:
            raise failure

    def read(self, name: str) -> bytes | None:
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            # NotADirectoryError too: a file where the archive directory should be.
            raise ArchiveUnavailable(
                f"cannot read archive object {path}: {exc.strerror or exc}"
            ) from exc
        return decompress(data, str(path))

    def remove(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink(missing_ok=True)
        except NotADirectoryError:
            return  # no directory, so no object
        except OSError as exc:
            raise ArchiveUnavailable(
                f"cannot remove archive object {path}: {exc.strerror or exc}"
            ) from exc


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable: without it a power cut can undo the new name."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
