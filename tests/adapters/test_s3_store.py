"""S3FileStore against a moto server over HTTP: deletes, missing objects, prefix, request
counts, the listing cap, failures."""

from __future__ import annotations

import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from conftest import HttpServer

from opsctl.adapters.s3_client import make_s3_client
from opsctl.adapters.storage.s3 import S3FileStore
from opsctl.errors import ConfigError, StorageUnavailable
from opsctl.ports import ExpiredExport
from opsctl.settings.data import S3Settings

pytestmark = pytest.mark.s3


def item(file_path: str, size: int | None = 10, id_: int = 1) -> ExpiredExport:
    return ExpiredExport(id_, f"export-{id_}", file_path, size)


def raw_client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")


def put_all(client: Any, bucket: str, objects: dict[str, bytes]) -> None:
    """moto takes ~20 ms per PUT: a few threads keep a few hundred objects quick."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]),
                      objects.items()))


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
    outcomes = store.delete([item("a/1.json", 5, 1), item("a/2.json", None, 2),
                             item("./a//2.json", None, 3)])
    # S3 keys are literal: "./a//2.json" is an object of its own (absent), not a/2.json.
    assert [(o.state, o.size) for o in outcomes] == [("deleted", 5), ("deleted", 5),
                                                      ("missing", 0)]
    assert keys(raw, s3_bucket) == {"a/1.json", "exports2/a/1.json"}
    # one listing (it gives the size of the row without one), one DeleteObjects
    assert requests == Counter({"ListObjectsV2": 1, "DeleteObjects": 1})


def test_a_thousand_files_cost_two_requests(s3_env: dict[str, str], s3_bucket: str,
                                            s3_endpoint: str) -> None:
    raw = raw_client(s3_endpoint)
    present = range(0, 1000, 50)  # moto takes ~20 ms per PUT: 20 real objects, 1000 keys
    for n in present:
        raw.put_object(Bucket=s3_bucket, Key=f"p/{n:04d}.json", Body=b"x")
    raw.put_object(Bucket=s3_bucket, Key="p/keep.json", Body=b"x")
    store, requests = counting_store(s3_env, s3_bucket, "p")
    outcomes = store.delete([item(f"{n:04d}.json", 1, n) for n in range(1000)])
    assert Counter(o.state for o in outcomes) == Counter({"deleted": 20, "missing": 980})
    assert sum(o.size for o in outcomes) == 20
    assert requests == Counter({"ListObjectsV2": 1, "DeleteObjects": 1})
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
    assert requests == Counter({"ListObjectsV2": 1, "DeleteObjects": 1})


def test_absent_objects_are_missing_with_or_without_a_size(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw_client(s3_endpoint).put_object(Bucket=s3_bucket, Key="there.json", Body=b"123")
    store, requests = counting_store(s3_env, s3_bucket, "")
    outcomes = store.delete([item("there.json", None, 1), item("gone.json", None, 2),
                             item("gone-with-size.json", 42, 3)])
    assert [(o.state, o.size) for o in outcomes] == [("deleted", 3), ("missing", 0),
                                                     ("missing", 0)]
    assert requests == Counter({"ListObjectsV2": 1, "DeleteObjects": 1})


def test_a_chunk_of_absent_objects_sends_no_delete(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw_client(s3_endpoint).put_object(Bucket=s3_bucket, Key="e/other.json", Body=b"1")
    store, requests = counting_store(s3_env, s3_bucket, "e")
    outcomes = store.delete([item("gone-1.json", 5, 1), item("gone-2.json", None, 2)])
    assert [o.state for o in outcomes] == ["missing", "missing"]
    # No DeleteObjects for keys that are not there: a versioned bucket would get a
    # delete marker for each of them.
    assert requests == Counter({"ListObjectsV2": 1})
    assert keys(raw_client(s3_endpoint), s3_bucket) == {"e/other.json"}


def date_key(n: int) -> str:
    """Keys the way export services write them: by day, ids increasing with time."""
    return f"2026/11/{20 + n // 100:02d}/{n:06d}.json"


def test_present_and_absent_keys_give_exact_counts(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw = raw_client(s3_endpoint)
    # Rows 0..299 over three days; every third object is already gone, and objects of
    # other rows (id 1000+, and keys around the range) sit in between and must stay.
    present = {f"exports/{date_key(n)}": b"x" * (n % 7 + 1) for n in range(300) if n % 3}
    others = {f"exports/{date_key(n)}x": b"o" for n in range(0, 300, 50)}
    others |= {"exports/2026/11/19/zzz.json": b"o", "exports/2026/11/23/000000.json": b"o",
               "exports2/2026/11/20/000001.json": b"o", "2026/11/20/000001.json": b"o"}
    put_all(raw, s3_bucket, present | others)
    store, requests = counting_store(s3_env, s3_bucket, "exports")
    store.list_page_size = 100  # 200 present + 6 others in range: three pages
    # Rows with an id divisible by 5 have no size: the listed Size stands in.
    rows = [item(date_key(n), None if n % 5 == 0 else n % 7 + 1, n) for n in range(300)]
    outcomes = store.delete(rows)
    by_id = {o.export.id: o for o in outcomes}
    assert [o.export.id for o in outcomes] == list(range(300))
    assert Counter(o.state for o in outcomes) == Counter({"deleted": 200, "missing": 100})
    assert all(by_id[n].state == ("missing" if n % 3 == 0 else "deleted") for n in range(300))
    assert sum(o.size for o in outcomes) == sum(len(body) for body in present.values())
    assert all(by_id[n].size == 0 for n in range(0, 300, 3))
    assert keys(raw, s3_bucket) == set(others)
    assert requests == Counter({"ListObjectsV2": 3, "DeleteObjects": 1})


def test_dry_run_finds_the_same_missing_files_and_deletes_nothing(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw = raw_client(s3_endpoint)
    present = {f"exports/{date_key(n)}": b"abc" for n in range(40) if n % 4}
    put_all(raw, s3_bucket, present)
    store, requests = counting_store(s3_env, s3_bucket, "exports")
    rows = [item(date_key(n), None if n % 2 else 3, n) for n in range(40)]
    checked = store.check(rows)
    assert keys(raw, s3_bucket) == set(present)
    assert requests == Counter({"ListObjectsV2": 1})
    deleted = store.delete(rows)
    assert [(o.state, o.size) for o in checked] == [(o.state, o.size) for o in deleted]
    assert Counter(o.state for o in checked) == Counter({"deleted": 30, "missing": 10})
    assert keys(raw, s3_bucket) == set()


def test_listing_spans_only_the_chunk_and_stops_past_its_largest_key(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw = raw_client(s3_endpoint)
    before = {f"exports/2026/11/19/{n:06d}.json": b"o" for n in range(30)}
    after = {f"exports/2026/11/20/{n:06d}.json": b"o" for n in range(100, 130)}
    chunk = {f"exports/2026/11/20/{n:06d}.json": b"x" for n in range(10)}
    put_all(raw, s3_bucket, before | chunk | after)
    store, requests = counting_store(s3_env, s3_bucket, "exports")
    store.list_page_size = 4
    outcomes = store.delete([item(f"2026/11/20/{n:06d}.json", 1, n) for n in range(12)])
    assert Counter(o.state for o in outcomes) == Counter({"deleted": 10, "missing": 2})
    # 10 chunk keys, then the first key past the chunk: ceil(11 / 4) pages, never the
    # 30 objects before the range nor all the 30 after it.
    assert requests == Counter({"ListObjectsV2": 3, "DeleteObjects": 1})
    assert keys(raw, s3_bucket) == set(before) | set(after)


def test_keys_spread_too_widely_fall_back_after_the_listing_cap(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    raw = raw_client(s3_endpoint)
    between = {f"exports/m/{n:03d}.json": b"o" for n in range(40)}  # not the chunk's
    chunk = {"exports/a/1.json": b"1", "exports/z/1.json": b"12345",
             "exports/z/2.json": b"1234"}
    put_all(raw, s3_bucket, between | chunk)
    store, requests = counting_store(s3_env, s3_bucket, "exports")
    store.list_page_size = 2  # the cap (5 pages) stops the listing at exports/m/008.json
    outcomes = store.delete([
        item("a/1.json", None, 1),   # listed: deleted, its size from the listing
        item("a/2.json", 9, 2),      # inside the listed range and not there: missing
        item("z/1.json", None, 3),   # past the cap, no size: a HEAD, as before
        item("z/2.json", 4, 4),      # past the cap, with a size: trusted, deleted
        item("z/3.json", 7, 5),      # past the cap and absent: counted deleted (fallback)
        item("z/4.json", None, 6),   # past the cap, no size, absent: the HEAD says missing
    ])
    assert [(o.state, o.size) for o in outcomes] == [
        ("deleted", 1), ("missing", 0), ("deleted", 5), ("deleted", 4), ("deleted", 7),
        ("missing", 0)]
    assert keys(raw, s3_bucket) == set(between)
    assert requests == Counter({"ListObjectsV2": 5, "HeadObject": 2, "DeleteObjects": 1})


def test_keys_sort_the_way_s3_lists_them(
    s3_env: dict[str, str], s3_bucket: str, s3_endpoint: str
) -> None:
    # S3 lists in UTF-8 byte order, which is code point order: "Z" < "z" < "é" < "😀".
    raw = raw_client(s3_endpoint)
    put_all(raw, s3_bucket, {"u/Z.json": b"1", "u/é.json": b"22", "u/😀.json": b"333",
                             "u/zz.json": b"o"})
    store, requests = counting_store(s3_env, s3_bucket, "u")
    store.list_page_size = 1
    outcomes = store.delete([item("😀.json", None, 1), item("Z.json", None, 2),
                             item("é.json", None, 3), item("y.json", None, 4)])
    assert [(o.state, o.size) for o in outcomes] == [("deleted", 3), ("deleted", 1),
                                                     ("deleted", 2), ("missing", 0)]
    assert keys(raw, s3_bucket) == {"u/zz.json"}
    assert requests == Counter({"ListObjectsV2": 4, "DeleteObjects": 1})


def test_check_deletes_nothing(s3_env: dict[str, str], s3_bucket: str,
                               s3_endpoint: str) -> None:
    raw = raw_client(s3_endpoint)
    raw.put_object(Bucket=s3_bucket, Key="keep.json", Body=b"1")
    store, requests = counting_store(s3_env, s3_bucket, "")
    outcomes = store.check([item("keep.json", 7, 1), item("../x", 1, 2)])
    assert [o.state for o in outcomes] == ["deleted", "failed"]
    assert keys(raw, s3_bucket) == {"keep.json"}
    assert requests == Counter({"ListObjectsV2": 1})


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
