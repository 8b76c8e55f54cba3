"""Storage listings for ``files audit``: byte order, symlinks, and one ListObjectsV2 call
per 1,000 keys (counted on a real client against moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from opsctl.adapters.storage.listing import LocalListing, S3Listing


def test_local_listing_is_in_byte_order_and_skips_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = ["a-b", "a/x", "a/y/z", "B", "é", "a.c", "ab", "z/é/1"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"1234")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (root / "link").symlink_to(outside / "secret")
    (root / "a" / "linkdir").symlink_to(outside, target_is_directory=True)

    listing = LocalListing(root)
    keys = [f.key for f in listing.files()]

    assert keys == sorted(names, key=lambda k: k.encode())
    assert listing.skipped_links == 2


@pytest.mark.s3
def test_s3_listing_makes_one_call_per_1000_keys(s3_env: dict[str, str],
                                                 s3_bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"],
                          region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret-key")
    for i in range(1001):
        client.put_object(Bucket=s3_bucket, Key=f"p/{i:05d}", Body=b"")
    client.put_object(Bucket=s3_bucket, Key="q/outside", Body=b"")
    calls: list[str] = []

    def count(**kwargs: Any) -> None:
        calls.append(kwargs["event_name"])

    client.meta.events.register("before-call.s3.ListObjectsV2", count)

    keys = [f.key for f in S3Listing(client, s3_bucket, "p/").files()]

    assert len(keys) == 1001 and keys[0] == "00000" and keys[-1] == "01000"
    assert len(calls) == 2


def test_local_listing_of_an_unreadable_root(tmp_path: Path) -> None:
    from opsctl.errors import StorageUnavailable

    with pytest.raises(StorageUnavailable):
        list(LocalListing(tmp_path / "absent").files())
