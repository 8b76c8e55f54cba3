"""The S3 log archive against a moto server over HTTP: objects, multipart uploads,
verification by reading back, and unreachable or missing buckets as ArchiveUnavailable."""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import socket
from typing import Any

import pytest

from opsctl.adapters.archive.s3 import S3Archive
from opsctl.adapters.s3_client import make_s3_client
from opsctl.errors import ArchiveUnavailable
from opsctl.settings.data import S3Settings

pytestmark = pytest.mark.s3

PAYLOAD = '{"id":1,"text":"é \\"q\\" \\\\ \\n"}\n{"id":2,"text":"🚀"}\n'.encode()
NAME = "000000000001-000000000002.run-1.jsonl.gz"
MIB = 1024 * 1024


def client(endpoint: str, env: dict[str, str], **settings: Any) -> Any:
    return make_s3_client(S3Settings(endpoint_url=endpoint, **settings), env)


@pytest.fixture
def s3(s3_endpoint: str, s3_env: dict[str, str]) -> Any:
    return client(s3_endpoint, s3_env)


def test_write_puts_a_gzip_object_under_the_prefix(s3: Any, s3_bucket: str) -> None:
    archive = S3Archive(s3, s3_bucket, "/logs/export_logs/")

    written = archive.write(NAME, PAYLOAD)

    key = f"logs/export_logs/{NAME}"
    obj = s3.get_object(Bucket=s3_bucket, Key=key)
    stored = obj["Body"].read()
    assert gzip.decompress(stored) == PAYLOAD
    assert written.uri == f"s3://{s3_bucket}/{key}"
    assert (written.bytes, written.sha256) == (len(stored), hashlib.sha256(stored).hexdigest())
    assert obj["ContentType"] == "application/gzip"
    assert obj["Metadata"] == {"sha256": written.sha256}
    archive.verify(written)
    assert archive.read(NAME) == (PAYLOAD, written)


def test_moto_honours_if_none_match_and_an_object_is_never_replaced(
    s3: Any, s3_bucket: str
) -> None:
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"1")
    with pytest.raises(Exception, match="PreconditionFailed"):
        s3.put_object(Bucket=s3_bucket, Key="k", Body=b"2", IfNoneMatch="*")
    archive = S3Archive(s3, s3_bucket, "p")
    first = archive.write(NAME, PAYLOAD)

    assert archive.write(NAME, PAYLOAD) == first  # the same bytes again: fine
    with pytest.raises(ArchiveUnavailable, match="already exists with other content"):
        archive.write(NAME, b'{"id":1,"text":"another database\'s row 1"}\n')

    archive.verify(first)
    assert gzip.decompress(s3.get_object(Bucket=s3_bucket, Key=f"p/{NAME}")["Body"].read()
                           ) == PAYLOAD


def test_an_object_zlib_wrote_is_the_same_object_when_rewritten_with_isal(
    s3: Any, s3_bucket: str
) -> None:
    stored = gzip.compress(PAYLOAD, compresslevel=1, mtime=0)
    s3.put_object(Bucket=s3_bucket, Key=f"p/{NAME}", Body=stored)
    archive = S3Archive(s3, s3_bucket, "p", gzip_level=1)

    written = archive.write(NAME, PAYLOAD)

    assert s3.get_object(Bucket=s3_bucket, Key=f"p/{NAME}")["Body"].read() == stored
    assert (written.bytes, written.sha256) == (len(stored), hashlib.sha256(stored).hexdigest())
    archive.verify(written)
    with pytest.raises(ArchiveUnavailable, match="already exists with other content"):
        archive.write(NAME, PAYLOAD + b'{"id":3}\n')


def test_a_large_object_is_not_replaced_either(s3: Any, s3_bucket: str) -> None:
    noise = random.Random(8).randbytes(6 * MIB)
    payload = base64.b64encode(noise) + b"\n"
    archive = S3Archive(s3, s3_bucket, "p", multipart_threshold=5 * MIB)
    s3.put_object(Bucket=s3_bucket, Key=f"p/{NAME}", Body=b"someone else's object")

    with pytest.raises(ArchiveUnavailable, match="already exists with other content"):
        archive.write(NAME, payload)

    assert s3.get_object(Bucket=s3_bucket, Key=f"p/{NAME}")["Body"].read() == (
        b"someone else's object")
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_markers_are_plain_json_and_the_old_name_is_read(s3: Any, s3_bucket: str) -> None:
    archive = S3Archive(s3, s3_bucket, "p/export_logs")
    archive.write_marker(b'{"object": "b"}')

    assert s3.get_object(Bucket=s3_bucket, Key="p/export_logs/.inflight.json")[
        "Body"].read() == b'{"object": "b"}'
    archive.remove_marker()
    assert archive.read_marker() is None
    s3.put_object(Bucket=s3_bucket, Key="p/export_logs/_inflight.json.gz",
                  Body=gzip.compress(b'{"o": 1}'))
    assert archive.read_marker() == b'{"o": 1}'
    archive.remove_marker()
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_large_objects_go_up_in_parts(s3: Any, s3_bucket: str) -> None:
    noise = random.Random(7).randbytes(9 * MIB)  # base64 of noise barely compresses
    payload = b"".join(b'{"blob":"' + base64.b64encode(noise[i:i + 3000]) + b'"}\n'
                       for i in range(0, len(noise), 3000))
    archive = S3Archive(s3, s3_bucket, "p", multipart_threshold=5 * MIB)

    written = archive.write(NAME, payload)

    head = s3.head_object(Bucket=s3_bucket, Key=f"p/{NAME}")
    assert written.bytes > 5 * MIB
    assert head["ETag"].strip('"').endswith("-2")  # a two-part multipart upload
    assert head["ContentLength"] == written.bytes
    archive.verify(written)
    assert archive.read(NAME) == (payload, written)


def test_verify_fails_when_the_stored_object_differs(s3: Any, s3_bucket: str) -> None:
    archive = S3Archive(s3, s3_bucket, "p")
    written = archive.write(NAME, PAYLOAD)
    s3.put_object(Bucket=s3_bucket, Key=f"p/{NAME}", Body=gzip.compress(b"{}\n"))

    with pytest.raises(ArchiveUnavailable, match="failed verification"):
        archive.verify(written)


def test_read_of_a_missing_object_is_none_and_remove_is_idempotent(
    s3: Any, s3_bucket: str
) -> None:
    archive = S3Archive(s3, s3_bucket, "")

    assert archive.read(NAME) is None
    archive.write(NAME, PAYLOAD)
    archive.remove(NAME)
    archive.remove(NAME)
    assert archive.read(NAME) is None
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_a_bucket_that_does_not_exist(s3: Any) -> None:
    archive = S3Archive(s3, "no-such-bucket-opsctl", "p")

    with pytest.raises(ArchiveUnavailable, match="NoSuchBucket"):
        archive.read(NAME)
    with pytest.raises(ArchiveUnavailable, match="NoSuchBucket"):
        archive.write(NAME, PAYLOAD)


def test_an_endpoint_that_refuses_connections(s3_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends
    refused = client(f"http://127.0.0.1:{port}", s3_env, connect_timeout_s=0.5,
                     read_timeout_s=0.5, max_attempts=1)
    archive = S3Archive(refused, "bucket", "p")

    with pytest.raises(ArchiveUnavailable, match="unreachable"):
        archive.read(NAME)
    with pytest.raises(ArchiveUnavailable):
        archive.write(NAME, PAYLOAD)
