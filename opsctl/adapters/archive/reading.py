"""Archive objects read back for ``logs verify`` and ``logs restore``: a directory walked
without following symlinks, or an S3 prefix listed a page (1,000 keys) at a time.

Both read an object as a stream of 1 MiB chunks, so an object of any size costs one chunk
of memory, and neither ever writes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from opsctl.adapters.s3_client import s3_errors
from opsctl.errors import ArchiveUnavailable
from opsctl.ports import StoredObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1 << 20
_TEMPORARY = ".opsctl-writing.tmp"  # the local archive's write-in-progress file


class LocalArchiveObjects:
    """``ArchiveObjects`` under a directory; symlinks are neither followed nor listed."""

    parallel_reads = 2  # gzip and sha256 release the GIL on large chunks

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Written as ArchiveLocation writes it (no percent-encoding), which is how the
        # catalog names the root.
        self.uri = f"file://{directory}"

    def listing(self) -> Iterator[StoredObject]:
        try:
            info = os.stat(self.directory)
        except FileNotFoundError:
            # A typo in the URI or an unmounted volume must not read as a clean, empty
            # archive: only a writer creates the directory, so a reader needs it there.
            raise ArchiveUnavailable(f"archive {self.uri} does not exist") from None
        except OSError as exc:
            raise ArchiveUnavailable(f"archive {self.uri}: {exc.strerror or exc}") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise ArchiveUnavailable(f"archive {self.uri} is not a directory")
        yield from self._walk(self.directory, "")

    def _walk(self, directory: Path, prefix: str) -> Iterator[StoredObject]:
        try:
            with os.scandir(directory) as entries:
                found = sorted((entry.name, entry) for entry in entries)
        except OSError as exc:
            raise ArchiveUnavailable(
                f"archive {self.uri}/{prefix}: {exc.strerror or exc}") from exc
        for name, entry in found:
            if entry.is_symlink() or name == _TEMPORARY:
                continue
            key = f"{prefix}{name}"
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(directory / name, f"{key}/")
            elif entry.is_file(follow_symlinks=False):
                size = entry.stat(follow_symlinks=False).st_size
                yield StoredObject(f"{self.uri}/{key}", key, size)

    def chunks(self, obj: StoredObject) -> Iterator[bytes]:
        path = self.directory / obj.key
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # removed since it was listed: reads as an empty object
        except OSError as exc:
            raise ArchiveUnavailable(f"cannot read {obj.uri}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "rb", buffering=0) as handle:
            while True:
                try:
                    chunk = handle.read(CHUNK)
                except OSError as exc:
                    raise ArchiveUnavailable(
                        f"cannot read {obj.uri}: {exc.strerror or exc}") from exc
                if not chunk:
                    return
                yield chunk


class S3ArchiveObjects:
    """``ArchiveObjects`` under ``s3://bucket/prefix``: one ListObjectsV2 per 1,000 keys,
    one streamed GetObject per object."""

    parallel_reads = 4  # each read mostly waits on the network
    page_size = 1000

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def listing(self) -> Iterator[StoredObject]:
        below = f"{self.prefix}/" if self.prefix else ""
        request = {"Bucket": self.bucket, "Prefix": below, "MaxKeys": self.page_size}
        while True:
            with s3_errors(ArchiveUnavailable, f"S3 archive {self.uri}"):
                page = self.client.list_objects_v2(**request)  # type: ignore[arg-type]
            for item in page.get("Contents", []):
                key = item["Key"]
                yield StoredObject(f"s3://{self.bucket}/{key}", key[len(below):],
                                   int(item["Size"]))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            request["ContinuationToken"] = token

    def chunks(self, obj: StoredObject) -> Iterator[bytes]:
        key = f"{self.prefix}/{obj.key}" if self.prefix else obj.key
        with s3_errors(ArchiveUnavailable, f"S3 archive {obj.uri}"):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()


