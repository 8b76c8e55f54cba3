"""Log archive objects in an S3 bucket (``s3://bucket/prefix``).

A PUT (or a completed multipart upload) is atomic in S3, so an object is either all there
or absent; boto3 checksums each request body, and after the upload the object is read
back and its size and sha256 compared with what was sent before any row is deleted.
Objects above ``multipart_threshold`` go up in parts of that size; the whole object is
one batch of rows, already in memory, so nothing larger is ever held.

A killed multipart upload leaves its parts behind until the bucket's lifecycle rule
``AbortIncompleteMultipartUpload`` removes them; the object itself never appears.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

from opsctl.adapters.archive.objects import CONTENT_TYPE, compress, decompress, mismatch
from opsctl.adapters.s3_client import s3_errors
from opsctl.errors import ArchiveUnavailable
from opsctl.ports import ArchivedObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_MULTIPART_THRESHOLD = 8 * 1024 * 1024
_READ_CHUNK = 1 << 20


class S3Archive:
    """``LogArchive`` under ``prefix`` in ``bucket``."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        gzip_level: int = 1,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    ) -> None:
        self.client = client
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
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig

        key = self._key(name)
        data, digest = compress(payload, self.gzip_level)
        config = TransferConfig(multipart_threshold=self.multipart_threshold,
                                multipart_chunksize=self.multipart_threshold)
        try:
            with s3_errors(ArchiveUnavailable, f"S3 archive {self._where(name)}"):
                self.client.upload_fileobj(
                    io.BytesIO(data), self.bucket, key,
                    ExtraArgs={"ContentType": CONTENT_TYPE, "Metadata": {"sha256": digest}},
                    Config=config,
                )
        except S3UploadFailedError as exc:  # s3transfer's wrapper around the request error
            raise ArchiveUnavailable(
                f"S3 archive: cannot write {self._where(name)}: {exc}"
            ) from exc
        return ArchivedObject(name, self._where(name), len(data), digest)

    def verify(self, written: ArchivedObject) -> None:
        digest = hashlib.sha256()
        size = 0
        with s3_errors(ArchiveUnavailable, f"S3 archive: reading back {written.uri}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(written.name))["Body"]
            try:
                while chunk := body.read(_READ_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            finally:
                body.close()
        failure = mismatch(written.uri, written.bytes, written.sha256, size, digest.hexdigest())
        if failure is not None:
            raise failure

    def read(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with s3_errors(ArchiveUnavailable, f"S3 archive {self._where(name)}"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            data = response["Body"].read()
        return decompress(data, self._where(name))

    def remove(self, name: str) -> None:
        with s3_errors(ArchiveUnavailable, f"S3 archive {self._where(name)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))
