"""Export files on a local disk, deleted without ever leaving the storage root.

``file_path`` is written by another application, so it is untrusted input to a delete.
The lexical check (:func:`opsctl.domain.paths.safe_key`) refuses ``..`` and absolute keys;
this module refuses what no string check can see. Every path is walked from a file
descriptor of the root, one component at a time with ``O_NOFOLLOW``, and the last
component is examined with ``lstat`` and removed with ``unlinkat`` relative to its parent
descriptor. A symlink anywhere on the way, or a file that is not a regular file, is a
per-file refusal; a symlink's target is never reached, and a directory swapped for a
symlink mid-run cannot redirect the walk because no path string is ever resolved again.

A row is marked ``expired`` when its file is deleted or *missing*, so "missing" must mean
the file is gone, not that a directory on the way was renamed while the run looked. A file
is missing only when it is absent from the directory that is, after the look, still the
one at its path (the same inode, reached afresh from the root). A directory on the way
that is not there, or that is no longer the one the walk used, makes the file a per-file
error instead: the row is left as it is and the next run tries again.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from opsctl.domain.paths import UnsafePath, safe_key
from opsctl.errors import ConfigError, StorageUnavailable
from opsctl.ports import ExpiredExport, FileOutcome

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Unlinks at once. An unlink waits mostly on the filesystem (its journal and directory
# blocks), not on a core: on ext4 with two cores, 6,400 files in 256 directories took
# 0.64-0.73 s one at a time, 0.36-0.45 s two at a time and 0.28-0.32 s four at a time
# (`find -delete`: 0.49-0.53 s).
DELETE_LANES = 4
# Below this many files a chunk is deleted on the calling thread: no pool to start.
_LANES_FROM = 64


def _max_open_dirs() -> int:
    """Directory descriptors one chunk may keep: half the process's limit, at most 4096.

    Exports are usually sharded over a few hundred directories; keeping them all open
    saves an open and a close per file.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, soft // 2))


class _Refused(Exception):
    """A per-file refusal: (kind, message) for the export_file_cleanup_error event."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Missing(Exception):
    """The last component is not in its (open) parent directory."""


class LocalFileStore:
    """``FileStore`` over a directory; refuses to exist for an empty, ``/`` or absent root."""

    backend = "local"
    max_chunk = 10_000

    def __init__(self, root: Path, *, max_open_dirs: int | None = None) -> None:
        self.root = _usable_root(root)
        self.max_open_dirs = max_open_dirs or _max_open_dirs()

    def delete(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        return self._each(files, remove=True)

    def check(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        return self._each(files, remove=False)

    def _each(self, files: list[ExpiredExport], *, remove: bool) -> list[FileOutcome]:
        lanes = _lanes(files) if remove and len(files) >= _LANES_FROM else []
        with _Walk(self.root, self.max_open_dirs // max(1, len(lanes))) as walk:
            if len(lanes) < 2:
                return [walk.handle(item, remove=remove) for item in files]
            return self._in_lanes(files, lanes, walk)

    def _in_lanes(self, files: list[ExpiredExport], lanes: list[list[int]],
                  first: _Walk) -> list[FileOutcome]:
        """Delete a chunk on several threads, each with the directories of its own files
        (so each directory is opened once per chunk, as on one thread); the outcomes in
        the chunk's order. The root was opened (``first``) before any file is touched, so
        an unusable root still fails the chunk before anything is deleted."""
        found: list[FileOutcome | None] = [None] * len(files)

        def lane(positions: list[int], walk: _Walk) -> None:
            for position in positions:
                found[position] = walk.handle(files[position], remove=True)

        def own_lane(positions: list[int]) -> None:
            with _Walk(self.root, first.max_dirs) as walk:
                lane(positions, walk)

        with ThreadPoolExecutor(len(lanes) - 1, thread_name_prefix="opsctl-unlink") as pool:
            others = [pool.submit(own_lane, positions) for positions in lanes[1:]]
            lane(lanes[0], first)
            for other in others:
                other.result()
        return [outcome for outcome in found if outcome is not None]


def _lanes(files: list[ExpiredExport]) -> list[list[int]]:
    """The chunk's positions in up to ``DELETE_LANES`` lanes, every file of a directory in
    the same lane (directories dealt out in the order they first appear)."""
    lane_of: dict[str, int] = {}
    lanes: list[list[int]] = [[] for _ in range(DELETE_LANES)]
    for position, item in enumerate(files):
        directory = item.file_path.rpartition("/")[0]
        lane = lane_of.setdefault(directory, len(lane_of) % DELETE_LANES)
        lanes[lane].append(position)
    return [positions for positions in lanes if positions]


def _usable_root(root: Path) -> Path:
    text = str(root).strip()
    if text in ("", ".", "/"):
        raise ConfigError(f"storage.root {text!r} refused: files cleanup never runs at an "
                          "empty root or at /", key="storage.root")
    resolved = Path(os.path.abspath(root.expanduser()))
    if resolved.resolve() == Path("/"):
        raise ConfigError(f"storage.root {str(root)!r} resolves to /: refused",
                          key="storage.root")
    if not resolved.is_dir():
        raise ConfigError(f"storage.root {str(resolved)!r} is not a directory",
                          key="storage.root")
    return resolved


class _Walk:
    """Descriptors of the directories met in one chunk, the root's first.

    Files of one chunk usually share directories, so each directory is opened once per
    chunk rather than once per file; that is most of the gap to ``find -delete``.
    """

    def __init__(self, root: Path, max_dirs: int) -> None:
        self.root = root
        self._dirs: dict[tuple[str, ...], int] = {}
        self.max_dirs = max(2, max_dirs)

    def __enter__(self) -> _Walk:
        try:
            # The root itself may be a symlink an administrator chose (/srv/exports -> /data).
            self._dirs[()] = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageUnavailable(
                f"storage root {self.root} cannot be opened: {exc.strerror}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def handle(self, item: ExpiredExport, *, remove: bool) -> FileOutcome:
        try:
            parts = _key_parts(item.file_path)
            parent = self._parent(parts, item.file_path)
            try:
                info = _regular_file(parent, parts[-1], item.file_path)
                if remove:
                    os.unlink(parts[-1], dir_fd=parent)
            except (_Missing, FileNotFoundError):  # FileNotFoundError: gone since lstat
                self._confirm_parent(parts, parent, item.file_path)
                return FileOutcome(item, "missing")
        except _Refused as refused:
            return FileOutcome(item, "failed", 0, refused.kind, refused.message)
        except OSError as exc:
            return FileOutcome(item, "failed", 0, "delete_failed",
                               f"cannot delete {item.file_path!r}: {_why(exc)}")
        size = item.file_size_bytes if item.file_size_bytes is not None else info.st_size
        return FileOutcome(item, "deleted", size)

    def _confirm_parent(self, parts: tuple[str, ...], parent: int, file_path: str) -> None:
        """Refuse unless the directory ``parent`` is, now, the one at the file's path.

        Walked afresh from the root path with new descriptors: a cached descriptor may hold
        a directory renamed away since, and a directory swapped for another one mid-run
        would otherwise make every file in it look missing.
        """
        opened: list[int] = []
        try:
            try:
                opened.append(os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
                for depth in range(1, len(parts)):
                    opened.append(os.open(parts[depth - 1], _DIR_FLAGS, dir_fd=opened[-1]))
            except OSError as exc:
                shown = "/".join(parts[:len(opened)]) or str(self.root)
                raise _Refused(
                    "directory_missing",
                    f"storage key {file_path!r}: directory {shown!r} on the way is not "
                    f"there now ({_why(exc)}); it may have been renamed while cleanup ran. "
                    "Row left as it is, retried next run") from None
            now, used = os.fstat(opened[-1]), os.fstat(parent)
            if (now.st_dev, now.st_ino) != (used.st_dev, used.st_ino):
                shown = "/".join(parts[:-1]) or str(self.root)
                raise _Refused(
                    "directory_changed",
                    f"storage key {file_path!r}: directory {shown!r} was replaced while "
                    "cleanup ran. Row left as it is, retried next run")
        finally:
            for fd in opened:
                os.close(fd)

    def _parent(self, parts: tuple[str, ...], file_path: str) -> int:
        parent = parts[:-1]
        fd = self._dirs.get(parent)
        if fd is not None:
            # Already opened through the no-follow chain: the descriptor is that directory,
            # whatever has been renamed or swapped for a symlink on the way since.
            self._dirs[parent] = self._dirs.pop(parent)  # most recently used goes last
            return fd
        for depth in range(1, len(parts)):
            self._open_dir(parts[:depth], file_path)
        return self._dirs[parent]

    def _open_dir(self, parts: tuple[str, ...], file_path: str) -> None:
        if parts in self._dirs:
            self._dirs[parts] = self._dirs.pop(parts)  # most recently used goes last
            return
        parent = self._dirs[parts[:-1]]
        try:
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            raise _directory_missing(parts, file_path) from None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                # O_NOFOLLOW|O_DIRECTORY says ENOTDIR for a symlink too: lstat tells them apart.
                try:
                    info = _lstat(parent, parts[-1])
                except _Missing:
                    raise _directory_missing(parts, file_path) from None
                link = stat.S_ISLNK(info.st_mode)
                raise _Refused(
                    "unsafe_path" if link else "not_a_directory",
                    f"storage key {file_path!r}: {'/'.join(parts)!r} is "
                    f"{'a symlink' if link else 'not a directory'}; refused",
                ) from None
            raise
        if len(self._dirs) >= self.max_dirs:
            self._forget_least_recent(parts[:-1])
        self._dirs[parts] = fd

    def _forget_least_recent(self, keep: tuple[str, ...]) -> None:
        # The root and the parent about to be used stay; the next file reopens the rest.
        for key in self._dirs:
            if key and key != keep:
                os.close(self._dirs.pop(key))
                return


# Keys made only of these characters, no component starting with a dot, are what safe_key
# would return unchanged; checking that is a fifth of the cost of building its path, which
# showed in a 100,000-file run. Anything else goes through safe_key itself.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*(?:/[A-Za-z0-9_+-][A-Za-z0-9_.+-]*)*")


def _key_parts(file_path: str) -> tuple[str, ...]:
    if _PLAIN_KEY.fullmatch(file_path):
        return tuple(file_path.split("/"))
    try:
        return safe_key(file_path).parts
    except UnsafePath as exc:
        raise _Refused("unsafe_path", str(exc)) from None


def _directory_missing(parts: tuple[str, ...], file_path: str) -> _Refused:
    # Not "missing": the file may well exist, in a directory renamed while the run looked.
    return _Refused(
        "directory_missing",
        f"storage key {file_path!r}: directory {'/'.join(parts)!r} on the way is not there; "
        "it may have been renamed or removed. Row left as it is, retried next run")


def _lstat(parent: int, name: str) -> os.stat_result:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise _Missing from None


def _regular_file(parent: int, name: str, file_path: str) -> os.stat_result:
    info = _lstat(parent, name)
    if stat.S_ISLNK(info.st_mode):
        raise _Refused("unsafe_path", f"storage key {file_path!r} is a symlink; refused "
                       "(its target is never touched)")
    if not stat.S_ISREG(info.st_mode):
        raise _Refused("not_regular_file",
                       f"storage key {file_path!r} is not a regular file; refused")
    return info


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
