"""One way to build an S3 client from ``[s3]``, for export storage, log archives and the
health check alike, and one translation of its failures into opsctl's errors.

The client never waits forever (connect/read timeouts) and retries in botocore's
``standard`` mode, which backs off and retries throttling and transient network errors
but gives up after ``max_attempts``; an endpoint that does not answer then becomes a
``DependencyUnavailable`` (exit 3) instead of a hung cron job.

The standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``,
``AWS_REGION`` ...) are read from the environment the runtime was given rather than from
``os.environ`` alone, so a test or an embedding caller can hand opsctl its own; anything
not found there falls back to botocore's usual chain (config files, instance roles).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opsctl.errors import ConfigError, DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from opsctl.settings.data import S3Settings

def endpoint_url(s3: S3Settings, environ: Mapping[str, str]) -> str | None:
    """``[s3] endpoint_url``, else the AWS variables botocore itself would honour."""
    return (s3.endpoint_url or environ.get("AWS_ENDPOINT_URL_S3")
            or environ.get("AWS_ENDPOINT_URL") or None)


def make_s3_client(s3: S3Settings, environ: Mapping[str, str]) -> S3Client:
    """A client with the configured timeouts and retries; no request is made here."""
    import boto3
    from botocore.config import Config

    key_id = s3.access_key_id.get_secret_value() if s3.access_key_id else None
    secret = s3.secret_access_key.get_secret_value() if s3.secret_access_key else None
    if key_id is None and environ.get("AWS_ACCESS_KEY_ID"):
        key_id = environ["AWS_ACCESS_KEY_ID"]
        secret = environ.get("AWS_SECRET_ACCESS_KEY")
    endpoint = endpoint_url(s3, environ)
    config = Config(
        connect_timeout=s3.connect_timeout_s,
        read_timeout=s3.read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": s3.max_attempts},
        # S3-compatible services (MinIO, moto, Ceph) rarely resolve virtual-host buckets.
        s3={"addressing_style": "path"} if endpoint else None,
    )
    try:
        with s3_errors(DependencyUnavailable, "S3"):
            session = boto3.session.Session(
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                aws_session_token=None if s3.access_key_id else environ.get("AWS_SESSION_TOKEN"),
                region_name=(s3.region or environ.get("AWS_REGION")
                             or environ.get("AWS_DEFAULT_REGION")),
                profile_name=None if key_id else environ.get("AWS_PROFILE") or None,
            )
            return session.client("s3", endpoint_url=endpoint, config=config)
    except ValueError as exc:  # botocore's word for a malformed endpoint URL
        raise ConfigError(f"s3.endpoint_url: {exc}", key="s3.endpoint_url") from exc


@contextmanager
def s3_errors(unavailable: type[DependencyUnavailable], where: str) -> Iterator[None]:
    """Translate botocore's failures into ``unavailable`` (a ``StorageUnavailable`` for
    export files, an ``ArchiveUnavailable`` for log archives), ``from`` the original.

    Only failures of the whole request are translated; per-key errors inside a successful
    response (``DeleteObjects``) are the caller's to read.
    """
    from botocore import exceptions as bce

    try:
        yield
    except bce.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message") or str(exc)
        raise unavailable(f"{where}: {code}: {message}") from exc
    except bce.NoCredentialsError as exc:
        raise unavailable(f"{where}: no AWS credentials found (set [s3] keys, AWS_PROFILE "
                          "or AWS_ACCESS_KEY_ID)") from exc
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError) as exc:
        raise unavailable(f"{where}: endpoint unreachable: {exc}") from exc
    except bce.ReadTimeoutError as exc:
        raise unavailable(f"{where}: no answer within the read timeout: {exc}") from exc
    except bce.BotoCoreError as exc:
        raise unavailable(f"{where}: {exc}") from exc

