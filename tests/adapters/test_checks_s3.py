"""The s3 check against a moto server over HTTP."""

from __future__ import annotations

import pytest

from opsctl.adapters.checks.s3 import S3Probe
from opsctl.ports import CheckFinding
from opsctl.settings.data import S3Settings

pytestmark = pytest.mark.s3


def settings(endpoint: str) -> S3Settings:
    return S3Settings(endpoint_url=endpoint, region="us-east-1",
                      access_key_id="testing", secret_access_key="testing-secret-key")


def test_an_existing_bucket_is_ok(s3_endpoint: str, s3_bucket: str) -> None:
    finding = S3Probe(s3_bucket, settings(s3_endpoint)).check(5.0)

    assert finding == CheckFinding(detail={"bucket": s3_bucket})


def test_a_missing_bucket_is_critical(s3_endpoint: str) -> None:
    finding = S3Probe("no-such-bucket-here", settings(s3_endpoint)).check(5.0)

    assert finding == CheckFinding("critical", "not_found",
                                   "bucket 'no-such-bucket-here' not found")


def test_an_endpoint_nobody_listens_on_is_unreachable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    finding = S3Probe("bucket", settings(f"http://127.0.0.1:{port}")).check(2.0)

    assert (finding.state, finding.error_kind) == ("critical", "unreachable")


def test_the_credentials_come_from_the_given_environment(s3_env: dict[str, str],
                                                          s3_bucket: str) -> None:
    finding = S3Probe(s3_bucket, S3Settings(), s3_env).check(5.0)

    assert finding.state == "ok"
