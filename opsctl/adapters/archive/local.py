"""Log archive objects in a local directory (``file:///dir``).

Objects are created exclusively, never replaced: each is written to a temporary file in
the same directory, fsynced, then hard-linked to its final name, which fails when the name
exists. A reader (or a run after ``kill -9``) sees the whole object or none, never a torn
file, and no run can write over another run's object. An existing object with the same
content is accepted (the same rows written again, perhaps by another compressor: the
content is compared decompressed); different content is an error before any row is
deleted. On a file system without hard links the object is created with ``O_EXCL``
instead (still exclusive, but a crash mid-write can leave a short file, which verification
and ``logs verify`` then report). There are a few fixed temporary names per directory, one
per object staged at once (the next object is staged while the one before is published,
or two lanes each stage their own), because only the lock holder writes here and a killed
run must not leave a trail of partial files.

Archive objects are fsynced, file and directory, before ``write`` (or ``publish``)
returns, because their rows are deleted next and a power cut must not take the only copy. The in-flight marker is
plain JSON, replaced in place, and not fsynced: losing it to a power cut can at worst leave
one uncatalogued object behind, never lose a row.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from opsctl.adapters.archive.objects import (
    compress,
    decompress,
    holds,
    mismatch,
    other_content,
)
from opsctl.domain.archive_names import LEGACY_MARKER_NAME, MARKER_NAME
from opsctl.errors import ArchiveUnavailable
from opsctl.ports import ArchivedObject, StagedObject

# One name per object staged and not yet published or discarded (at most two at once: the
# next batch's while the current one is published, or one per lane); the marker has its
# own. A killed run leaves at most these behind, each rewritten by the next run.
_TEMPORARIES = (".opsctl-writing.tmp", ".opsctl-writing-2.tmp", ".opsctl-writing-3.tmp")
_MARKER_TEMPORARY = ".opsctl-marker.tmp"
_READ_CHUNK = 1 << 20
# link() refused because the file system has no hard links (FAT, some FUSE and SMB mounts).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS}


class LocalArchive:
    """``LogArchive`` in ``directory``, created on the first write."""

    def __init__(self, directory: Path, gzip_level: int = 1,
                 marker: str = MARKER_NAME) -> None:
        self.directory = directory
        self.gzip_level = gzip_level
        self.marker = marker
        self.uri = directory.as_uri()
        self._free = list(_TEMPORARIES)  # temporary names no staged object holds
        self._holders: dict[str, StagedObject] = {}  # the others: the object holding each
        self._names = threading.Lock()
        self._made = False  # the directory is known to exist

    def _path(self, name: str) -> Path:
        if not name or "/" in name or name in (".", "..", _MARKER_TEMPORARY, *_TEMPORARIES):
            raise ValueError(f"invalid archive object name {name!r}")
        return self.directory / name

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        return self.publish(name, self.stage(payload))

    def stage(self, payload: bytes) -> StagedObject:
        """Compress, write and fsync under a temporary name of its own until published or
        discarded (safe from several threads at once)."""
        data, digest = compress(payload, self.gzip_level)
        with self._names:
            if not self._free:
                raise RuntimeError("more archive objects staged at once than temporary names")
            temporary = self.directory / self._free.pop(0)
        with _or_unavailable(temporary, f"archive data to {temporary}", self._release):
            if not self._made:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._made = True
            # A run killed between linking an object and unlinking its temporary name
            # leaves that name on the object's inode: writing through it would rewrite
            # the object. So the name is removed first and the file created anew.
            temporary.unlink(missing_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        staged = StagedObject(payload, data, digest, str(temporary))
        with self._names:
            self._holders[temporary.name] = staged
        return staged

    def publish(self, name: str, staged: StagedObject) -> ArchivedObject:
        final = self._path(name)
        size, digest = len(staged.data), staged.sha256
        temporary = Path(staged.path) if staged.path else None
        try:
            try:
                if temporary is None:
                    raise OSError(errno.ENOSYS, "nothing staged on disk")
                os.link(temporary, final)
            except FileExistsError:
                size, digest = self._same_or_refuse(final, staged.payload)
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                size, digest = self._create_exclusively(final, staged.data, digest,
                                                        staged.payload)
            self.discard(staged)  # before the fsync, which makes both changes durable
            _fsync_directory(self.directory)
        except OSError as exc:
            raise ArchiveUnavailable(
                f"cannot write archive object {final}: {exc.strerror or exc}"
            ) from exc
        finally:
            self.discard(staged)
        # An object already there is described as stored: verify reads back those bytes.
        return ArchivedObject(name, final.as_uri(), size, digest)

    def discard(self, staged: StagedObject) -> None:
        """Remove a staged object's temporary file and free its name, once: a second
        discard of the same object must not touch the name another object holds now."""
        if not staged.path:
            return
        temporary = Path(staged.path)
        with self._names:
            if self._holders.get(temporary.name) is not staged:
                return
            del self._holders[temporary.name]
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            self._free.append(temporary.name)

    def _release(self, temporary: Path) -> None:
        """Free the name of a temporary whose staging failed (no object holds it)."""
        with self._names:
            if temporary.name not in self._free and temporary.name not in self._holders:
                self._free.append(temporary.name)

    def _create_exclusively(self, final: Path, data: bytes, digest: str,
                            payload: bytes) -> tuple[int, str]:
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return self._same_or_refuse(final, payload)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return len(data), digest

    def _same_or_refuse(self, path: Path, payload: bytes) -> tuple[int, str]:
        """The size and sha256 of the object at ``path`` when it holds ``payload``."""
        stored = path.read_bytes()
        if not holds(stored, payload):
            raise other_content(str(path), stored)
        return len(stored), hashlib.sha256(stored).hexdigest()

    def verify(self, written: ArchivedObject) -> None:
        path = self._path(written.name)
        try:
            size, digest = _digest(path)
        except OSError as exc:
            raise ArchiveUnavailable(
                f"cannot read back archive object {path}: {exc.strerror or exc}"
            ) from exc
        failure = mismatch(str(path), written.bytes, written.sha256, size, digest)
        if failure is not None:
            raise failure

    def _stored(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            # NotADirectoryError too: a file where the archive directory should be.
            raise ArchiveUnavailable(
                f"cannot read archive object {path}: {exc.strerror or exc}"
            ) from exc

    def read(self, name: str) -> tuple[bytes, ArchivedObject] | None:
        path = self._path(name)
        data = self._stored(path)
        if data is None:
            return None
        stored = ArchivedObject(name, path.as_uri(), len(data), hashlib.sha256(data).hexdigest())
        return decompress(data, str(path)), stored

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

    def write_marker(self, content: bytes) -> None:
        final = self._path(self.marker)
        temporary = self.directory / _MARKER_TEMPORARY
        with _or_unavailable(temporary, f"the in-flight marker {final}"):
            if not self._made:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._made = True
            temporary.write_bytes(content)
            os.replace(temporary, final)

    def read_marker(self) -> bytes | None:
        content = self._stored(self._path(self.marker))
        if content is not None:
            return content
        legacy = self._path(LEGACY_MARKER_NAME)
        data = self._stored(legacy)
        return None if data is None else decompress(data, str(legacy))

    def remove_marker(self) -> None:
        self.remove(self.marker)
        self.remove(LEGACY_MARKER_NAME)


def _digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable: without it a power cut can undo the new name."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _or_unavailable(temporary: Path, what: str,
                    release: Callable[[Path], None] | None = None) -> Iterator[None]:
    """A write through ``temporary`` that fails removes it (and frees its name) and stops
    the run (exit 3)."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        if release is not None:
            release(temporary)
        if isinstance(exc, OSError):
            raise ArchiveUnavailable(f"cannot write {what}: {exc.strerror or exc}") from exc
        raise
