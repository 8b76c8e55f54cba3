"""Stored export files listed in UTF-8 byte order of their keys, for ``files audit``.

Local: the walk starts from a descriptor of the root and opens every directory below it
relative to its parent with ``O_NOFOLLOW``, as files cleanup does, so a symlink (to a file
or a directory) is never followed, and is not listed either: it is not a stored file and
an audit must never offer it for deletion. Each directory's entries are sorted with a
directory counted as ``name/``, which makes the depth-first walk come out in the byte
order of the full keys (``a-b`` sorts before ``a/x``). Memory is one directory listing per
level of depth.

S3: ``ListObjectsV2`` pages of up to 1,000 keys, which S3 returns in UTF-8 byte order.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opsctl.adapters.s3_client import s3_errors
from opsctl.errors import StorageUnavailable
from opsctl.ports import StoredFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalListing:
    """``StorageListing`` of a local root (already checked by ``LocalFileStore``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)
        self.skipped_links = 0

    def files(self) -> Iterator[StoredFile]:
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageUnavailable(
                f"storage root {self.root} cannot be opened: {exc.strerror}") from exc
        yield from self._walk(fd, "")

    def _walk(self, fd: int, prefix: str) -> Iterator[StoredFile]:
        try:
            with os.scandir(fd) as scan:
                entries: list[tuple[str, str, os.stat_result | None]] = []
                for entry in scan:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISLNK(info.st_mode):
                        self.skipped_links += 1
                    elif stat.S_ISDIR(info.st_mode):
                        entries.append((entry.name + "/", entry.name, None))
                    elif stat.S_ISREG(info.st_mode):
                        entries.append((entry.name, entry.name, info))
        except OSError as exc:
            os.close(fd)
            raise StorageUnavailable(
                f"cannot list {self.root / prefix}: {exc.strerror or exc}") from exc
        try:
            entries.sort(key=lambda item: item[0])
            for _, name, found in entries:
                if found is not None:
                    modified = datetime.fromtimestamp(found.st_mtime, UTC)
                    yield StoredFile(prefix + name, found.st_size, modified)
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    continue  # removed since it was listed
                except OSError as exc:
                    raise StorageUnavailable(
                        f"cannot open {self.root / prefix / name}: {exc.strerror}") from exc
                yield from self._walk(child, f"{prefix}{name}/")
        finally:
            os.close(fd)


class S3Listing:
    """``StorageListing`` of ``s3://bucket/prefix``: one ListObjectsV2 call per 1,000 keys."""

    page_size = 1000

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix  # normalised by S3FileStore: "" or ending in "/"
        self.where = f"s3://{bucket}/{prefix}"

    def files(self) -> Iterator[StoredFile]:
        request = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": self.page_size}
        while True:
            with s3_errors(StorageUnavailable, self.where):
                page = self.client.list_objects_v2(**request)  # type: ignore[arg-type]
            for item in page.get("Contents", []):
                modified = item["LastModified"]
                yield StoredFile(item["Key"][len(self.prefix):], int(item["Size"]),
                                 modified.astimezone(UTC))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            request["ContinuationToken"] = token
