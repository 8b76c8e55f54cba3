"""Export files in an S3 bucket under a prefix: one listing and one delete per 1000 keys.

``DeleteObjects`` reports success for an absent key, so on its own it cannot tell a
missing file from a deleted one, and a ``HEAD`` per object would cost 1000 requests per
1000 files. Instead each chunk (at most 1000 keys) is first matched against one
``ListObjectsV2`` walk over the range its keys span: the chunk's keys are sorted, and the
listing starts just before the smallest one (``StartAfter`` = that key minus its last
character), under the longest prefix all of them share (never shorter than the configured
prefix), and pages on until it passes the largest one. A key the listing does not show is
``missing``; its row is still marked expired, as for local files. Only the listed keys go
into the quiet ``DeleteObjects`` (so a versioned bucket gets no delete marker for an
object that was never there), and a row without ``file_size_bytes`` takes its bytes from
the listed ``Size``. ``check`` (the dry run) makes the same listing, so a dry run reports
the real run's missing count.

Keys written in time order (``2026/11/20/<id>.json``, ids increasing) put a batch of rows
next to each other in the bucket: the chunk lists in one or two pages, so 1000 files cost
two or three requests. The cost is bounded for any layout: a listing stops after
``MAX_LIST_PAGES`` pages (5000 listed keys) even when it has not reached the chunk's
largest key, because its keys are spread over a range holding many other objects (ids
hashed into many directories, for instance). Keys up to the last one listed are still
judged by the listing; for the keys beyond it the store falls back to trusting the rows:
they are sent to ``DeleteObjects`` and counted ``deleted``, with the row's size, or, for a
row without a size, a ``HEAD`` for the size that also says whether the object is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opsctl.adapters.s3_client import make_s3_client, s3_errors
from opsctl.domain.paths import UnsafePath, s3_key
from opsctl.errors import ConfigError, StorageUnavailable
from opsctl.ports import ExpiredExport, FileOutcome

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from opsctl.settings import Settings

# The most keys DeleteObjects accepts in one request (and ListObjectsV2 returns in one).
MAX_KEYS_PER_REQUEST = 1000
# Pages a chunk's existence listing may take before the chunk falls back to trusting rows.
MAX_LIST_PAGES = 5
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


class S3FileStore:
    """``FileStore`` over ``s3://bucket/prefix``; never deletes a key outside the prefix."""

    backend = "s3"
    max_chunk = MAX_KEYS_PER_REQUEST
    # Keys per ListObjectsV2 page (S3's own maximum); tests lower it to page cheaply.
    list_page_size = MAX_KEYS_PER_REQUEST

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
            else:
                keys[item.id] = key
        if not keys:
            return [outcomes[item.id] for item in files]
        listed, listed_through = self._list_range(sorted(set(keys.values())))
        doomed: dict[int, str] = {}
        for item in files:
            target = keys.get(item.id)
            if target is None:
                continue
            size = item.file_size_bytes
            if target <= listed_through:  # the listing covered this key: it knows
                if target not in listed:
                    outcomes[item.id] = FileOutcome(item, "missing")
                    continue
                if size is None:
                    size = listed[target]
            elif size is None:  # past the listing cap: the pre-listing way
                size = self._head_size(target)
                if size is None:
                    outcomes[item.id] = FileOutcome(item, "missing")
                    continue
            doomed[item.id] = target
            outcomes[item.id] = FileOutcome(item, "deleted", size)
        if remove and doomed:
            errors = self._delete_keys(sorted(set(doomed.values())))
            for item_id, key in doomed.items():
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

    def _list_range(self, keys: list[str]) -> tuple[dict[str, int], str]:
        """The objects S3 holds between ``keys[0]`` and ``keys[-1]`` (sorted, non-empty),
        with their sizes, and the key up to which that listing is complete: ``keys[-1]``,
        or less when ``MAX_LIST_PAGES`` ran out first.

        S3 lists in UTF-8 byte order, which is Python's code point order for str.
        """
        smallest, largest = keys[0], keys[-1]
        prefix = _common_prefix(smallest, largest)  # sorted: theirs is everyone's
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix,
                                   "MaxKeys": self.list_page_size}
        if smallest[:-1] > prefix:
            # Every key >= smallest sorts after its own first len-1 characters.
            request["StartAfter"] = smallest[:-1]
        listed: dict[str, int] = {}
        through = ""
        for _ in range(MAX_LIST_PAGES):
            with s3_errors(StorageUnavailable, self.where):
                page = self.client.list_objects_v2(**request)
            for obj in page.get("Contents", []):
                listed[obj["Key"]] = obj["Size"]
                through = obj["Key"]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token or through >= largest:
                return listed, largest
            request["ContinuationToken"] = token
        return listed, through

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


def _common_prefix(first: str, second: str) -> str:
    """The longest string both start with, character by character (not by path part)."""
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return first[:length]
