"""The ``s3`` check: does the bucket answer ``HeadBucket`` with the configured endpoint and
credentials?

HeadBucket needs the same endpoint, credentials and network path as the exports and the
log archives, so it fails for the reasons they would, without reading or listing anything.
The client is built with the check's timeout and a single attempt: a probe reports what
it sees now, retrying is the monitoring system's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opsctl.adapters.s3_client import make_s3_client
from opsctl.ports import CheckFinding
from opsctl.settings.data import S3Settings

_MISSING = {"404", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


@dataclass(frozen=True)
class S3Probe:
    bucket: str
    settings: S3Settings
    environ: Mapping[str, str] = field(default_factory=dict)

    def check(self, timeout_s: float) -> CheckFinding:
        from botocore import exceptions as bce

        bounded = self.settings.model_copy(update={
            "connect_timeout_s": min(self.settings.connect_timeout_s, timeout_s),
            "read_timeout_s": min(self.settings.read_timeout_s, timeout_s),
            "max_attempts": 1,
        })
        client = make_s3_client(bounded, self.environ)
        try:
            client.head_bucket(Bucket=self.bucket)
        except bce.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            if code in _MISSING:
                return CheckFinding("critical", "not_found", f"bucket {self.bucket!r} not found")
            if code in _DENIED:
                return CheckFinding("critical", "access_denied",
                                    f"bucket {self.bucket!r}: access denied ({code})")
            return CheckFinding("critical", "s3_error", f"bucket {self.bucket!r}: {code}")
        except (bce.ConnectTimeoutError, bce.ReadTimeoutError):
            return CheckFinding("critical", "timeout", f"S3 did not answer within {timeout_s:g}s")
        except bce.EndpointConnectionError as exc:
            return CheckFinding("critical", "unreachable", f"S3 endpoint unreachable: {exc}")
        except bce.NoCredentialsError:
            return CheckFinding("critical", "no_credentials", "no AWS credentials found")
        except bce.BotoCoreError as exc:
            return CheckFinding("critical", "s3_error", str(exc))
        finally:
            client.close()
        return CheckFinding(detail={"bucket": self.bucket})
