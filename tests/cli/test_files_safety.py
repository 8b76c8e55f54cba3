"""Files cleanup never loses data: S3 keys taken literally, poison rows quarantined, a
directory renamed mid-run told apart from a file that is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from sqlalchemy import create_engine, text
from support import Cli, export_row, insert_exports

NOW = datetime.now(UTC)
PAST = NOW - timedelta(days=1)
LIVE = datetime(2099, 1, 1, tzinfo=UTC)


def statuses(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT export_id, status FROM export_logs"))
            return {row.export_id: row.status for row in rows}
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def s3_client(endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")


@pytest.mark.s3
def test_s3_keys_are_used_exactly_as_stored(cli: Cli, db_url: str, s3_env: dict[str, str],
                                            s3_endpoint: str, s3_bucket: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret-key")
    # The live export's file, and one of the two look-alikes: the other is already gone.
    client.put_object(Bucket=s3_bucket, Key="exports/a/b.json", Body=b"live export")
    client.put_object(Bucket=s3_bucket, Key="exports/a//b.json", Body=b"12345")
    insert_exports(db_url, [
        export_row(export_id="live", file_path="a/b.json", expires_at=LIVE),
        export_row(export_id="double-slash", file_path="a//b.json", file_size_bytes=None,
                   expires_at=PAST),
        export_row(export_id="dot", file_path="a/./b.json", file_size_bytes=None,
                   expires_at=PAST),
    ])
    env = {**s3_env, "OPSCTL_STORAGE__BACKEND": "s3", "OPSCTL_STORAGE__BUCKET": s3_bucket,
           "OPSCTL_STORAGE__PREFIX": "exports"}
    dry = cli("files", "cleanup", "--dry-run", env=env)
    real = cli("files", "cleanup", env=env)
    for result in (dry, real):
        assert result.exit_code == 0, result.stdout
        summary = result.one("export_file_cleanup_complete")
        assert (summary["candidates"], summary["deleted_count"], summary["missing_count"],
                summary["failed_count"], summary["bytes_freed"]) == (2, 1, 1, 0, 5)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert keys == {"exports/a/b.json"}
    body = client.get_object(Bucket=s3_bucket, Key="exports/a/b.json")["Body"].read()
    assert body == b"live export"
    assert statuses(db_url) == {"live": "completed", "double-slash": "expired",
                                "dot": "expired"}
