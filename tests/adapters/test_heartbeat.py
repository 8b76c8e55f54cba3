"""Heartbeat pings against a real local HTTP server: both styles, retries, an endpoint
that answers 500 and one that never answers."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import HttpServer

from opsctl.adapters.observers.heartbeat import (
    MAX_BODY_BYTES,
    HeartbeatObserver,
    ping_for_end,
    ping_for_start,
    with_path,
    with_query,
)
from opsctl.ports import RunEnd, RunStart

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RID = "0b5a3b6e-6c8c-4a55-9a57-2a2d1f8e7c10"


def ended(exit_code: int = 0, **event: Any) -> RunEnd:
    line = {"type": "export_file_cleanup_complete", "state": "ok", "exit_code": exit_code,
            "deleted_count": 3, **event}
    return RunEnd("files.cleanup", RID, "cron-1", T0, T0 + timedelta(seconds=2),
                  "ok" if exit_code < 3 else "error", exit_code, line)


class Events:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, type_: str, message: str, *, level: str = "info", **fields: Any) -> None:
        self.seen.append({"type": type_, "message": message, "level": level, **fields})


def observe(url: str, run: RunEnd, style: str = "healthchecks", timeout_s: float = 2
            ) -> Events:
    emitted = Events()
    observer = HeartbeatObserver(url, style, timeout_s, emitted)  # type: ignore[arg-type]
    observer.run_started(RunStart(run.job, RID, "cron-1", T0))
    observer.run_ended(run)
    return emitted


def test_healthchecks_start_then_success_with_the_summary_as_body(
    http_server: HttpServer
) -> None:
    emitted = observe(f"{http_server.url}/ping/abc", ended(1))

    (start, end) = http_server.requests
    assert (start.method, start.path) == ("GET", f"/ping/abc/start?rid={RID}")
    assert (end.method, end.path) == ("POST", f"/ping/abc?rid={RID}")
    assert json.loads(end.body) == {"type": "export_file_cleanup_complete", "state": "ok",
                                    "exit_code": 1, "deleted_count": 3}
    assert [(e["phase"], e["ok"], e["attempts"], e["http_status"]) for e in emitted.seen] == [
        ("start", True, 1, 200), ("success", True, 1, 200)]
    assert all(e["type"] == "heartbeat_sent" and e["level"] == "info" for e in emitted.seen)


@pytest.mark.parametrize("code", [3, 64, 75, 78, 143])
def test_healthchecks_fail_on_any_other_exit(http_server: HttpServer, code: int) -> None:
    emitted = observe(f"{http_server.url}/ping/abc/", ended(code))

    assert http_server.requests[-1].path == f"/ping/abc/fail?rid={RID}"
    assert json.loads(http_server.requests[-1].body)["exit_code"] == code
    assert emitted.seen[-1]["phase"] == "fail" and emitted.seen[-1]["ok"] is True


def test_cronitor_run_complete_fail_with_series_and_status_code(
    http_server: HttpServer
) -> None:
    observe(f"{http_server.url}/p/key/files?env=prod", ended(2), style="cronitor")
    observe(f"{http_server.url}/p/key/files", ended(3), style="cronitor")

    queries = [(urlsplit(r.path).path, parse_qs(urlsplit(r.path).query))
               for r in http_server.requests]
    assert queries == [
        ("/p/key/files", {"env": ["prod"], "state": ["run"], "series": [RID]}),
        ("/p/key/files", {"env": ["prod"], "state": ["complete"], "series": [RID],
                          "status_code": ["2"]}),
        ("/p/key/files", {"state": ["run"], "series": [RID]}),
        ("/p/key/files", {"state": ["fail"], "series": [RID], "status_code": ["3"]}),
    ]
    assert {r.method for r in http_server.requests} == {"GET"}


def test_the_body_is_cut_at_100_kb(http_server: HttpServer) -> None:
    observe(http_server.url, ended(0, message="x" * 300_000))

    assert len(http_server.requests[-1].body) == MAX_BODY_BYTES


def test_a_500_is_retried_once_then_reported_not_ok(http_server: HttpServer) -> None:
    http_server.status = 500

    emitted = observe(http_server.url, ended(0))

    assert len(http_server.requests) == 4  # start twice, end twice
    assert [(e["phase"], e["ok"], e["attempts"], e["http_status"], e["error"]["kind"])
            for e in emitted.seen] == [("start", False, 2, 500, "status"),
                                       ("success", False, 2, 500, "status")]
    assert all(e["level"] == "warning" for e in emitted.seen)


def test_a_500_then_200_succeeds_on_the_retry(http_server: HttpServer) -> None:
    answers = iter([500, 200, 200])
    http_server.responder = lambda rec: (next(answers), b"ok")

    emitted = observe(http_server.url, ended(0))

    assert [(e["phase"], e["ok"], e["attempts"]) for e in emitted.seen] == [
        ("start", True, 2), ("success", True, 1)]


def test_a_404_is_not_retried(http_server: HttpServer) -> None:
    http_server.status = 404

    emitted = observe(http_server.url, ended(0))

    assert len(http_server.requests) == 2
    assert emitted.seen[-1]["ok"] is False and emitted.seen[-1]["http_status"] == 404


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_reported() -> None:
    emitted = observe(f"http://127.0.0.1:{closed_port()}/ping", ended(0))

    assert [(e["phase"], e["ok"], e["error"]["kind"]) for e in emitted.seen] == [
        ("start", False, "refused"), ("success", False, "refused")]


def test_an_endpoint_that_never_answers_holds_the_end_for_at_most_two_timeouts(
    http_server: HttpServer
) -> None:
    http_server.delay_s = 60
    emitted = Events()
    observer = HeartbeatObserver(http_server.url, "healthchecks", 0.5, emitted)
    observer.run_started(RunStart("files.cleanup", RID, "cron-1", T0))

    began = time.monotonic()
    observer.run_ended(ended(0))
    held = time.monotonic() - began

    # Bounded by the 2 x 0.5 s budget, not by the server's 60 s (a loose bound on purpose:
    # this is a proof that nothing waits for the answer, not a benchmark).
    assert held < 20
    assert [(e["phase"], e["ok"], e["error"]["kind"]) for e in emitted.seen] == [
        ("start", False, "timeout"), ("success", False, "timeout")]


def test_url_surgery_keeps_existing_paths_and_queries() -> None:
    assert with_path("https://hc.example/ping/u-1?create=1", "fail") == (
        "https://hc.example/ping/u-1/fail?create=1")
    assert with_query("https://hc.example/p?rid=old&a=1", rid="new") == (
        "https://hc.example/p?a=1&rid=new")
    assert ping_for_start("healthchecks", "https://hc.example/u", "r").url == (
        "https://hc.example/u/start?rid=r")
    assert ping_for_end("cronitor", "https://cronitor.example/p/k/m", ended(0)).url == (
        f"https://cronitor.example/p/k/m?state=complete&series={RID}&status_code=0")
