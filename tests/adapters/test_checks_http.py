"""The http check against a real local HTTP server (the ``http_server`` fixture)."""

from __future__ import annotations

import socket

from conftest import HttpServer

from opsctl.adapters.checks.http import HttpProbe
from opsctl.ports import CheckFinding


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_200_is_ok_and_records_the_http_status(http_server: HttpServer) -> None:
    finding = HttpProbe(f"{http_server.url}/healthz").check(2.0)

    assert finding == CheckFinding(detail={"http_status": 200})
    assert [(r.method, r.path) for r in http_server.requests] == [("GET", "/healthz")]


def test_a_redirect_counts_as_up_and_is_not_followed(http_server: HttpServer) -> None:
    http_server.status = 302
    finding = HttpProbe(http_server.url).check(2.0)

    assert finding.state == "ok"
    assert len(http_server.requests) == 1


def test_503_is_critical_with_the_status_as_reason(http_server: HttpServer) -> None:
    http_server.status = 503
    finding = HttpProbe(http_server.url).check(2.0)

    assert finding == CheckFinding("critical", "status", "status 503 (expected 2xx or 3xx)",
                                   {"http_status": 503})


def test_expect_status_is_an_exact_list(http_server: HttpServer) -> None:
    http_server.status = 204
    assert HttpProbe(http_server.url, expect_status=(200, 204)).check(2.0).state == "ok"

    http_server.status = 200
    finding = HttpProbe(http_server.url, expect_status=(204,)).check(2.0)
    assert (finding.state, finding.error_kind, finding.error_message) == (
        "critical", "status", "status 200 (expected 204)")

    http_server.status = 418
    assert HttpProbe(http_server.url, expect_status=(418,)).check(2.0).state == "ok"


def test_slower_than_max_latency_is_a_warning(http_server: HttpServer) -> None:
    http_server.delay_s = 0.3
    finding = HttpProbe(http_server.url, max_latency_ms=100).check(5.0)

    assert (finding.state, finding.error_kind) == ("warning", "slow")
    assert finding.error_message is not None
    assert finding.error_message.endswith("ms (max_latency_ms 100)")
    assert finding.detail == {"http_status": 200, "max_latency_ms": 100}


def test_a_server_that_hangs_beyond_the_timeout_is_a_timeout(http_server: HttpServer) -> None:
    http_server.delay_s = 3.0
    finding = HttpProbe(http_server.url).check(0.3)

    assert finding == CheckFinding("critical", "timeout", "no answer within 0.3s")


def test_connection_refused() -> None:
    finding = HttpProbe(f"http://127.0.0.1:{closed_port()}/").check(2.0)

    assert finding == CheckFinding("critical", "refused", "connection refused")


def test_tls_to_a_plain_http_server_is_a_tls_failure(http_server: HttpServer) -> None:
    finding = HttpProbe(http_server.url.replace("http://", "https://")).check(2.0)

    assert (finding.state, finding.error_kind) == ("critical", "tls")
    assert finding.error_message is not None
    assert finding.error_message.startswith("TLS handshake failed: ")


def test_no_message_ever_contains_the_url(http_server: HttpServer) -> None:
    secret_url = f"{http_server.url}/hb/token-abc123"
    http_server.status = 500
    messages = [HttpProbe(secret_url).check(2.0).error_message,
                HttpProbe(secret_url.replace("http://", "https://")).check(2.0).error_message,
                HttpProbe(f"http://127.0.0.1:{closed_port()}/token-abc123").check(2.0)
                .error_message]

    assert all(m and "token-abc123" not in m for m in messages)
