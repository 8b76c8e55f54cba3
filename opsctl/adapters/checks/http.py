"""The ``http`` check: GET a URL and judge the status and the latency.

The URL is treated as a secret (heartbeat URLs carry tokens), so no message written here
ever contains it; the emitter's redaction is the second line of defence, not the first.
Redirects are not followed: a 301 from a health endpoint is an answer, and following it
could leave the network the check was meant to watch.
"""

from __future__ import annotations

import errno
import ssl
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

# httpx imports its transport (httpcore, ~0.3 s) on the first Client(). Importing it here,
# while the probe is being built, keeps that out of the checks, where every http check
# thread would otherwise queue on the import lock and look slow.
import httpcore  # noqa: F401
import httpx

from opsctl.ports import CheckFinding


@dataclass(frozen=True)
class HttpProbe:
    url: str
    expect_status: tuple[int, ...] | None = None
    max_latency_ms: float | None = None

    def check(self, timeout_s: float) -> CheckFinding:
        began = time.monotonic()
        try:
            with httpx.Client(timeout=timeout_s, follow_redirects=False,
                              verify=_tls_context(self.url)) as client:
                response = client.get(self.url)
        except httpx.TimeoutException:
            return CheckFinding("critical", "timeout", f"no answer within {timeout_s:g}s")
        except httpx.TransportError as exc:
            kind, message = _transport_failure(exc)
            return CheckFinding("critical", kind, message)
        latency_ms = (time.monotonic() - began) * 1000
        detail: dict[str, Any] = {"http_status": response.status_code}
        if self.max_latency_ms is not None:
            detail["max_latency_ms"] = self.max_latency_ms
        if not self._status_ok(response.status_code):
            expected = (", ".join(map(str, self.expect_status)) if self.expect_status
                        else "2xx or 3xx")
            return CheckFinding("critical", "status",
                                f"status {response.status_code} (expected {expected})", detail)
        if self.max_latency_ms is not None and latency_ms > self.max_latency_ms:
            return CheckFinding("warning", "slow", f"answered in {latency_ms:.0f} ms "
                                f"(max_latency_ms {self.max_latency_ms:g})", detail)
        return CheckFinding(detail=detail)

    def _status_ok(self, status: int) -> bool:
        if self.expect_status is None:
            return 200 <= status < 400
        return status in self.expect_status


_TLS_LOCK = threading.Lock()


def _tls_context(url: str) -> ssl.SSLContext:
    """The CA bundle is loaded once per process, and only for https URLs.

    Loading it costs 0.1-0.5 s of CPU; every http check building its own at the same time
    would make the slowest check slower by the sum of them. httpx wants a context even for
    a plain http URL, which never uses it: that one is built without loading any CA.
    """
    if not url.lower().startswith("https://"):
        return _unused_context()
    with _TLS_LOCK:
        return _verifying_context()


@cache
def _verifying_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@cache
def _unused_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, but has nothing to verify


def _transport_failure(exc: httpx.TransportError) -> tuple[str, str]:
    """A short reason for a request that got no HTTP answer at all."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return "tls", f"TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "refused", "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "refused", "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return "unreachable", f"cannot connect: {text}"
    return "http_error", f"{type(exc).__name__}: {text}"
