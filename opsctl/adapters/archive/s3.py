"""Log archive objects in an S3 bucket (``s3://bucket/prefix``).

Objects are created exclusively: ``PutObject`` (or ``CompleteMultipartUpload``) with
``If-None-Match: *``, which AWS S3, MinIO and moto honour, so no run ever writes over
another run's object. When the key exists the upload is refused (412) and the stored
object is compared by its content, decompressed (another compressor writes other bytes for
the same lines): the same content is fine, other content is an error before any row is
deleted. A store that does not implement conditional writes (501) gets a check-then-write
instead (only the lock holder writes under the prefix, so nothing races it there).

A PUT or a completed multipart upload is atomic in S3, so an object is either all there or
absent; boto3 checksums each request body, and after the upload the object is read back
and its size and sha256 compared with what was sent before any row is deleted. Objects
above ``multipart_threshold`` go up in parts of that size; the whole object is one batch of
rows, already in memory, so nothing larger is ever held. A failed multipart upload is
aborted; one killed mid-way leaves its parts until the bucket's lifecycle rule
``AbortIncompleteMultipartUpload`` removes them, and the object itself never appears.

The in-flight marker is a small plain-JSON object, replaced on every batch.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from opsctl.adapters.archive.objects import (
    CONTENT_TYPE,
    compress,
    decompress,
    holds,
    mismatch,
    other_content,
)
from opsctl.adapters.s3_client import s3_errors
from opsctl.domain.archive_names import LEGACY_MARKER_NAME, MARKER_NAME
from opsctl.errors import ArchiveUnavailable
from opsctl.ports import ArchivedObject, StagedObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_MULTIPART_THRESHOLD = 8 * 1024 * 1024
_READ_CHUNK = 1 << 20
_EXISTS = {"PreconditionFailed", "412"}
_NOT_SUPPORTED = {"NotImplemented", "501"}
_ABSENT = {"NoSuchKey", "404", "NotFound"}


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Archive:
    """``LogArchive`` under ``prefix`` in ``bucket``."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        gzip_level: int = 1,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        marker: str = MARKER_NAME,
    ) -> None:
        self.client = client
        self.marker = marker
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.gzip_level = gzip_level
        self.multipart_threshold = multipart_threshold
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, name: str) -> str:
        if not name or "/" in name:
            raise ValueError(f"invalid archive object name {name!r}")
        return f"{self.prefix}/{name}" if self.prefix else name

    def _where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        return self.publish(name, self.stage(payload))

    def stage(self, payload: bytes) -> StagedObject:
        data, digest = compress(payload, self.gzip_level)
        return StagedObject(payload, data, digest)

    def discard(self, staged: StagedObject) -> None:
        """Nothing to do: a staged object is only bytes in memory."""

    def publish(self, name: str, staged: StagedObject) -> ArchivedObject:
        from botocore.exceptions import ClientError

        payload, data, digest = staged.payload, staged.data, staged.sha256
        size = len(data)
        where = self._where(name)
        with s3_errors(ArchiveUnavailable, f"S3 archive: cannot write {where}"):
            try:
                self._create(name, data, digest, conditional=True)
            except ClientError as exc:
                code = _code(exc)
                if code in _EXISTS:
                    size, digest = self._same_or_refuse(name, payload)
                elif code in _NOT_SUPPORTED:
                    found = self._same_or_absent(name, payload)
                    if found is None:
                        self._create(name, data, digest, conditional=False)
                    else:
                        size, digest = found
                else:
                    raise
        # An object already there is described as stored: verify reads back those bytes.
        return ArchivedObject(name, where, size, digest)

    def _create(self, name: str, data: bytes, digest: str, *, conditional: bool) -> None:
        key = self._key(name)
        extra: dict[str, Any] = {"ContentType": CONTENT_TYPE, "Metadata": {"sha256": digest}}
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if conditional else {}
        if len(data) <= self.multipart_threshold:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra,
                                   **condition)
            return
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        upload_id = upload["UploadId"]
        try:
            parts: list[Any] = []
            step = self.multipart_threshold
            for number, start in enumerate(range(0, len(data), step), start=1):
                part = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                               PartNumber=number, Body=data[start:start + step])
                parts.append({"ETag": part["ETag"], "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": parts}, **condition)
        except BaseException:
            from botocore.exceptions import BotoCoreError, ClientError

            # If the abort fails too, the bucket's lifecycle rule removes the parts.
            with contextlib.suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                   UploadId=upload_id)
            raise

    def _stored_digest(self, name: str) -> tuple[int, str] | None:
        from botocore.exceptions import ClientError

        digest = hashlib.sha256()
        size = 0
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return None
            raise
        try:
            while chunk := body.read(_READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        finally:
            body.close()
        return size, digest.hexdigest()

    def _same_or_absent(self, name: str, payload: bytes) -> tuple[int, str] | None:
        """The stored size and sha256 when ``name`` holds ``payload``, None when absent;
        refuses anything else."""
        stored = self._fetch(name)
        if stored is None:
            return None
        if not holds(stored, payload):
            raise other_content(self._where(name), stored)
        return len(stored), hashlib.sha256(stored).hexdigest()

    def _same_or_refuse(self, name: str, payload: bytes) -> tuple[int, str]:
        found = self._same_or_absent(name, payload)
        if found is None:
            raise ArchiveUnavailable(
                f"S3 archive: {self._where(name)} refused as existing, yet it cannot be read")
        return found

    def verify(self, written: ArchivedObject) -> None:
        with s3_errors(ArchiveUnavailable, f"S3 archive: reading back {written.uri}"):
            found = self._stored_digest(written.name) or (0, "")
        failure = mismatch(written.uri, written.bytes, written.sha256, *found)
        if failure is not None:
            raise failure

    def _get(self, name: str) -> bytes | None:
        with s3_errors(ArchiveUnavailable, f"S3 archive {self._where(name)}"):
            return self._fetch(name)

    def _fetch(self, name: str) -> bytes | None:
        """The stored bytes of ``name``, None when absent; other errors as boto raises."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return None
            raise
        stored: bytes = response["Body"].read()
        return stored

    def read(self, name: str) -> tuple[bytes, ArchivedObject] | None:
        data = self._get(name)
        if data is None:
            return None
        stored = ArchivedObject(name, self._where(name), len(data),
                                hashlib.sha256(data).hexdigest())
        return decompress(data, self._where(name)), stored

    def remove(self, name: str) -> None:
        with s3_errors(ArchiveUnavailable, f"S3 archive {self._where(name)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def write_marker(self, content: bytes) -> None:
        with s3_errors(ArchiveUnavailable, f"S3 archive: cannot write {self._where(self.marker)}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(self.marker), Body=content,
                                   ContentType="application/json")

    def read_marker(self) -> bytes | None:
        content = self._get(self.marker)
        if content is not None:
            return content
        data = self._get(LEGACY_MARKER_NAME)
        return None if data is None else decompress(data, self._where(LEGACY_MARKER_NAME))

    def remove_marker(self) -> None:
        self.remove(self.marker)
        self.remove(LEGACY_MARKER_NAME)
