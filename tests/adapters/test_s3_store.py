"""S3FileStore against a moto server over HTTP: deletes, prefix, request counts, failures."""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

import boto3
import pytest
from conftest import HttpServer

from opsctl.adapters.s3_client import make_s3_client
from opsctl.adapters.storage.s3 import S3FileStore
from opsctl.errors import ConfigError, StorageUnavailable
from opsctl.ports import ExpiredExport
from opsctl.settings_sections import S3Settings

pytestmark = pytest.mark.s3


def item(file_path: str, size: int | None = 10, id_: int = 1) -> ExpiredExport:
    return ExpiredExport(id_, f"export-{id_}", file_path, size)


def raw_client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")


def keys(client: Any, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def counting_store(s3_env: dict[str, str], bucket: str, prefix: str,
                   ) -> tuple[S3FileStore, Counter[str]]:
    client = make_s3_client(S3Settings(max_attempts=1), s3_env)
    requests: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        requests[model.name] += 1

    client.meta.events.register("before-call.s3", count)
    return S3FileStore(client, bucket, prefix), requests


def test_deletes_under_the_prefix_only(s3_env: dict[str, str], s3_bucket: str,
                                       s3_endpoint: str) -> None:
    raw = raw_client(s3_endpoint)
    for key in ("exports/a/1.json", "exports/a/2.json", "a/1.json", "exports2/a/1.json"):
        raw.put_object(Bucket=s3_bucket, Key=key, Body=b"12345")
    store, requests = counting_store(s3_env, s3_bucket, "/exports/")
    outcomes = store.delete([item("a/1.json", 5, 1), item("./a//2.json", None, 2)])
    assert [(o.state, o.size) for o in outcomes] == [("deleted", 5), ("deleted", 5)]
    assert keys(raw, s3_bucket) == {"a/1.json", "exports2/a/1.json"}
    # one HEAD for the row without a size, one DeleteObjects for the chunk
    assert requests == Counter({"HeadObject": 1, "DeleteObjects": 1})


def test_a_thousand_files_cost_one_request(s3_env: dict[str, str], s3_bucket: str,
                                           s3_endpoint: str) -> None:
    raw = raw_client(s3_endpoint)
    present = range(0, 1000, 50)  # moto takes ~20 ms per PUT: 20 real objects, 1000 keys
    for n in present:
        raw.put_object(Bucket=s3_bucket, Key=f"p/{n:04d}.json", Body=b"x")
    raw.put_object(Bucket=s3_bucket, Key="p/keep.json", Body=b"x")
    store, requests = counting_store(s3_env, s3_bucket, "p")
    outcomes = store.delete([item(f"{n:04d}.json", 1, n) for n in range(1000)])
    assert Counter(o.state for o in outcomes) == Counter({"deleted": 1000})
    assert sum(o.size for o in outcomes) == 1000
    assert requests == Counter({"DeleteObjects": 1})
    assert keys(raw, s3_bucket) == {"p/keep.json"}


def test_more_than_one_request_worth_is_refused(s3_env: dict[str, str], s3_bucket: str) -> None:
    store, _ = counting_store(s3_env, s3_bucket, "")
    with pytest.raises(ValueError, match="1000"):
        store.delete([item(f"{n}", 1, n) for n in range(1001)])


def test_keys_outside_the_prefix_are_refused_per_file(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw = raw_client(s3_endpoint)
    for key in ("secret.txt", "exports/ok.json", "exports/x\x01y"):
        raw.put_object(Bucket=s3_bucket, Key=key, Body=b"1")
    store, requests = counting_store(s3_env, s3_bucket, "exports")
    hostile = ["../secret.txt", "/secret.txt", "a/../../secret.txt", "..\\secret.txt", "",
               "x\x01y"]
    outcomes = store.delete([item(p, 1, n) for n, p in enumerate(hostile)]
                            + [item("ok.json", 1, 99)])
    assert [(o.state, o.error_kind) for o in outcomes] == (
        [("failed", "unsafe_path")] * len(hostile) + [("deleted", None)])
    assert keys(raw, s3_bucket) == {"secret.txt", "exports/x\x01y"}
    assert requests == Counter({"DeleteObjects": 1})


def test_missing_is_only_known_for_rows_without_a_size(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw_client(s3_endpoint).put_object(Bucket=s3_bucket, Key="there.json", Body=b"123")
    store, requests = counting_store(s3_env, s3_bucket, "")
    outcomes = store.delete([item("there.json", None, 1), item("gone.json", None, 2),
                             item("gone-with-size.json", 42, 3)])
    # S3 cannot tell an absent key from a deleted one without a HEAD per object: the row
    # that has a size is trusted and counted as deleted (see the module docstring).
    assert [(o.state, o.size) for o in outcomes] == [("deleted", 3), ("missing", 0),
                                                     ("deleted", 42)]
    assert requests == Counter({"HeadObject": 2, "DeleteObjects": 1})


def test_check_deletes_nothing(s3_env: dict[str, str], s3_bucket: str,
                               s3_endpoint: str) -> None:
    raw = raw_client(s3_endpoint)
    raw.put_object(Bucket=s3_bucket, Key="keep.json", Body=b"1")
    store, requests = counting_store(s3_env, s3_bucket, "")
    outcomes = store.check([item("keep.json", 7, 1), item("../x", 1, 2)])
    assert [o.state for o in outcomes] == ["deleted", "failed"]
    assert keys(raw, s3_bucket) == {"keep.json"}
    assert requests == Counter()


def test_missing_bucket_is_storage_unavailable(s3_env: dict[str, str]) -> None:
    store, _ = counting_store(s3_env, "no-such-bucket-opsctl", "")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        store.delete([item("a.json")])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_refused_endpoint_is_storage_unavailable() -> None:
    settings = S3Settings(endpoint_url=f"http://127.0.0.1:{closed_port()}",
                          connect_timeout_s=0.5, max_attempts=2)
    env = {"AWS_ACCESS_KEY_ID": "AKIAOPSCTLTEST", "AWS_SECRET_ACCESS_KEY": "very-secret-key"}
    store = S3FileStore(make_s3_client(settings, env), "bucket", "")
    with pytest.raises(StorageUnavailable, match="endpoint unreachable") as raised:
        store.delete([item("a.json")])
    assert raised.value.exit_code == 3
    assert "very-secret-key" not in raised.value.message


def test_endpoint_that_never_answers_times_out(http_server: HttpServer) -> None:
    http_server.delay_s = 2.0
    settings = S3Settings(endpoint_url=http_server.url, read_timeout_s=0.2, max_attempts=2)
    env = {"AWS_ACCESS_KEY_ID": "AKIAOPSCTLTEST", "AWS_SECRET_ACCESS_KEY": "very-secret-key"}
    store = S3FileStore(make_s3_client(settings, env), "bucket", "")
    with pytest.raises(StorageUnavailable, match="read timeout"):
        store.delete([item("a.json")])
    assert len(http_server.requests) == 2  # standard retries, max_attempts in all


@pytest.mark.parametrize("prefix", ["../up", "a/../../b"])
def test_unsafe_prefix_is_a_config_error(s3_env: dict[str, str], prefix: str) -> None:
    client = make_s3_client(S3Settings(), s3_env)
    with pytest.raises(ConfigError) as raised:
        S3FileStore(client, "bucket", prefix)
    assert raised.value.key == "storage.prefix"


def test_client_settings_override_the_environment(s3_env: dict[str, str]) -> None:
    settings = S3Settings(region="eu-west-3", endpoint_url="http://127.0.0.1:9",
                          connect_timeout_s=1.5, read_timeout_s=7, max_attempts=4)
    client = make_s3_client(settings, s3_env)
    assert client.meta.region_name == "eu-west-3"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    from_env = make_s3_client(S3Settings(), s3_env)
    assert from_env.meta.endpoint_url == s3_env["AWS_ENDPOINT_URL"]
    assert from_env.meta.region_name == "us-east-1"
