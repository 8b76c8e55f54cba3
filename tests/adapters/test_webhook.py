"""The webhook notifier against a real local HTTP server: payload, one retry, timeouts,
refused connections, and a URL (a secret) that never shows in an error."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from conftest import HttpServer, Recorded

from opsctl.adapters.notify.webhook import WebhookNotifier
from opsctl.ports import Delivery

TOKEN = "T0KEN-abc123-secret"
PAYLOAD = {"type": "export_failure_alert", "failure_rate": 0.125, "text": "ALERT ü"}


def _notifier(url: str, timeout_s: float = 2.0) -> WebhookNotifier:
    return WebhookNotifier(url, timeout_s=timeout_s, retry_delay_s=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def test_posts_the_payload_as_json(http_server: HttpServer) -> None:
    url = f"{http_server.url}/hooks/{TOKEN}?channel=ops"
    assert _notifier(url).send(PAYLOAD) == Delivery(True, 1)

    [request] = http_server.requests
    assert (request.method, request.path) == ("POST", f"/hooks/{TOKEN}?channel=ops")
    assert json.loads(request.body) == PAYLOAD
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("opsctl/")


def test_a_500_is_retried_once_then_delivered(http_server: HttpServer) -> None:
    answers = iter([500, 200])

    def responder(_: Recorded) -> tuple[int, bytes]:
        return next(answers), b""

    http_server.responder = responder
    assert _notifier(f"{http_server.url}/hooks/{TOKEN}").send(PAYLOAD) == Delivery(True, 2)
    assert [json.loads(r.body) for r in http_server.requests] == [PAYLOAD, PAYLOAD]


def test_two_5xx_give_up_after_the_retry(http_server: HttpServer) -> None:
    http_server.status = 503
    delivery = _notifier(f"{http_server.url}/hooks/{TOKEN}").send(PAYLOAD)
    assert delivery == Delivery(False, 2, "the webhook answered HTTP 503")
    assert len(http_server.requests) == 2


def test_a_4xx_is_not_retried(http_server: HttpServer) -> None:
    http_server.status = 404
    delivery = _notifier(f"{http_server.url}/hooks/{TOKEN}").send(PAYLOAD)
    assert delivery == Delivery(False, 1, "the webhook answered HTTP 404")
    assert len(http_server.requests) == 1


def test_a_429_is_retried(http_server: HttpServer) -> None:
    http_server.status = 429
    assert _notifier(http_server.url).send(PAYLOAD).attempts == 2
    assert len(http_server.requests) == 2


def test_a_redirect_is_not_followed(http_server: HttpServer) -> None:
    # A POST silently turned into a GET elsewhere is not a delivered alert.
    http_server.status = 302
    delivery = _notifier(http_server.url).send(PAYLOAD)
    assert delivery == Delivery(False, 1, "the webhook answered HTTP 302")


def test_a_slow_webhook_times_out_twice(http_server: HttpServer) -> None:
    http_server.delay_s = 1.0
    delivery = _notifier(f"{http_server.url}/hooks/{TOKEN}", timeout_s=0.2).send(PAYLOAD)
    assert delivery == Delivery(False, 2, "no answer within 0.2s (alerts.timeout_s)")
    assert len(http_server.requests) == 2


def test_a_refused_connection_is_reported_without_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/hooks/{TOKEN}"
    delivery = _notifier(url).send(PAYLOAD)
    assert (delivery.delivered, delivery.attempts) == (False, 2)
    assert delivery.error is not None and delivery.error.startswith("ConnectError: ")
    assert TOKEN not in delivery.error and "/hooks/" not in delivery.error
    assert TOKEN not in repr(_notifier(url))


def test_the_retry_waits_between_attempts(http_server: HttpServer) -> None:
    http_server.status = 500
    waits: list[float] = []
    notifier = WebhookNotifier(http_server.url, timeout_s=1, retry_delay_s=0.5,
                               sleep=waits.append)
    notifier.send(PAYLOAD)
    assert waits == [0.5]


def test_http_client_logs_never_carry_the_url(
    http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    # httpx logs each request's URL at INFO: `--log-level info` must not print the secret.
    with caplog.at_level(logging.DEBUG):
        _notifier(f"{http_server.url}/hooks/{TOKEN}").send(PAYLOAD)
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert httpx_lines == ['HTTP Request: POST *** "HTTP/1.0 200 OK"']
    assert TOKEN not in caplog.text
    assert logging.getLogger("httpx").filters == []  # only while sending
