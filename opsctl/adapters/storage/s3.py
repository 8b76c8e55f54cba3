"""Export files in an S3 bucket under a prefix, deleted 1000 keys per request.

``DeleteObjects`` in quiet mode answers only with the keys it could not delete, so a chunk
costs one request whatever its size. The row's ``file_size_bytes`` gives the bytes freed,
so no object is ever fetched or listed for its size.

S3 cannot tell a missing object from a deleted one: ``DeleteObjects`` reports success for
an absent key, and finding out would cost a ``HEAD`` per object (or a listing of the whole
prefix), which is what this store exists to avoid. So absent objects count as
``deleted``, with one exception: a row without ``file_size_bytes`` needs a ``HEAD`` for
its real size anyway, and that same request says whether the object is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from opsctl.adapters.s3_client import make_s3_client, s3_errors
from opsctl.domain.paths import UnsafePath, s3_key
from opsctl.errors import ConfigError, StorageUnavailable
from opsctl.ports import ExpiredExport, FileOutcome

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from opsctl.settings import Settings

# The most keys DeleteObjects accepts in one request.
MAX_KEYS_PER_REQUEST = 1000
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


class S3FileStore:
    """``FileStore`` over ``s3://bucket/prefix``; never deletes a key outside the prefix."""

    backend = "s3"
    max_chunk = MAX_KEYS_PER_REQUEST

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        try:
            # Normalised the way s3_key does it ("exports", "/exports/" -> "exports/").
            self.prefix = s3_key(prefix, "x")[:-1]
        except UnsafePath as exc:
            raise ConfigError(f"storage.prefix: {exc}", key="storage.prefix") from None

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str]) -> S3FileStore:
        bucket = settings.storage.bucket
        if not bucket:
            raise ConfigError('storage.bucket is required when storage.backend = "s3"',
                              key="storage.bucket")
        return cls(make_s3_client(settings.s3, environ), bucket, settings.storage.prefix)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def delete(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        return self._each(files, remove=True)

    def check(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        return self._each(files, remove=False)

    def _each(self, files: list[ExpiredExport], *, remove: bool) -> list[FileOutcome]:
        if len(files) > MAX_KEYS_PER_REQUEST:
            raise ValueError(f"at most {MAX_KEYS_PER_REQUEST} files per call")
        outcomes: dict[int, FileOutcome] = {}
        keys: dict[int, str] = {}
        for item in files:
            key = self._key(item)
            if isinstance(key, FileOutcome):
                outcomes[item.id] = key
                continue
            size = item.file_size_bytes
            if size is None:
                size = self._head_size(key)
                if size is None:
                    outcomes[item.id] = FileOutcome(item, "missing")
                    continue
            keys[item.id] = key
            outcomes[item.id] = FileOutcome(item, "deleted", size)
        if remove and keys:
            errors = self._delete_keys(sorted(set(keys.values())))
            for item_id, key in keys.items():
                if key in errors:
                    code, message = errors[key]
                    outcomes[item_id] = FileOutcome(
                        outcomes[item_id].export, "failed", 0, "delete_failed",
                        f"cannot delete s3://{self.bucket}/{key}: {code}: {message}")
        return [outcomes[item.id] for item in files]

    def _key(self, item: ExpiredExport) -> str | FileOutcome:
        try:
            key = s3_key(self.prefix, item.file_path)
        except UnsafePath as exc:
            return FileOutcome(item, "failed", 0, "unsafe_path", str(exc))
        if not key.startswith(self.prefix):  # s3_key promises it; a delete double-checks
            return FileOutcome(item, "failed", 0, "unsafe_path",
                               f"storage key {item.file_path!r} falls outside {self.where}")
        if any(ord(char) < 32 or ord(char) == 127 for char in key):
            # Control characters cannot travel in DeleteObjects' XML body: one such key
            # would make S3 reject the whole request.
            return FileOutcome(item, "failed", 0, "unsafe_path",
                               f"storage key {item.file_path!r} contains a control character")
        return key

    def _head_size(self, key: str) -> int | None:
        """The object's size, or None when it is not there."""
        from botocore.exceptions import ClientError

        with s3_errors(StorageUnavailable, self.where):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _NOT_FOUND:
                    return None
                raise

    def _delete_keys(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        """One DeleteObjects request; the keys S3 could not delete, with code and message."""
        with s3_errors(StorageUnavailable, self.where):
            answer = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        return {
            error.get("Key", ""): (error.get("Code", "Unknown"), error.get("Message", ""))
            for error in answer.get("Errors", [])
        }
