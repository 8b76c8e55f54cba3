"""Alerts in a real Alertmanager: received, deduplicated, resolved, and passed on to its
webhook receiver (the local ``http_server``)."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import HttpServer
from prometheus_servers import Server, http_json

from opsctl.adapters.notify.alertmanager import AlertmanagerPublisher
from opsctl.ports import Alert


def publisher(url: str, ttl: timedelta = timedelta(hours=1)) -> AlertmanagerPublisher:
    return AlertmanagerPublisher(url, ttl, timeout_s=5, clock=lambda: datetime.now(UTC))


def failing(job: str) -> Alert:
    return Alert("OpsctlJobFailing", "critical", {"opsctl_job": job},
                 f"opsctl job {job} is failing", f"{job}: last 3 runs failed")


def active(server: Server) -> list[dict[str, Any]]:
    return [a for a in http_json(server.url + "/api/v2/alerts")
            if a["labels"].get("service") == "opsctl"]


def notifications(hook: HttpServer, status: str, within_s: float = 30) -> list[dict[str, Any]]:
    """Webhook notifications Alertmanager sent with ``status``, waiting for the first."""
    deadline = time.monotonic() + within_s
    while True:
        found = [json.loads(r.body) for r in hook.requests if r.path == "/alertmanager"]
        found = [n for n in found if n["status"] == status]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_firing_alert_arrives_with_the_contract_labels_and_reaches_the_receiver(
    alertmanager: Server, http_server: HttpServer
) -> None:
    before = datetime.now(UTC)

    outcome = publisher(alertmanager.url).sync("OpsctlJobFailing", [failing("files.cleanup")],
                                               lambda labels: True)

    assert (outcome.ok, outcome.firing, outcome.resolved) == (True, 1, 0)
    (alert,) = active(alertmanager)
    assert alert["labels"] == {"alertname": "OpsctlJobFailing", "severity": "critical",
                               "service": "opsctl", "opsctl_job": "files.cleanup"}
    assert alert["annotations"] == {"summary": "opsctl job files.cleanup is failing",
                                    "description": "files.cleanup: last 3 runs failed"}
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert before + timedelta(minutes=59) < ends < before + timedelta(minutes=61)
    (sent,) = notifications(http_server, "firing")
    assert [a["labels"]["opsctl_job"] for a in sent["alerts"]] == ["files.cleanup"]


def test_re_sending_every_run_keeps_one_alert(alertmanager: Server) -> None:
    am = publisher(alertmanager.url)
    for _ in range(3):
        assert am.sync("OpsctlJobFailing", [failing("files.cleanup")], lambda labels: True).ok

    assert len(active(alertmanager)) == 1


def test_a_job_found_fine_is_resolved_and_the_receiver_hears_it(
    alertmanager: Server, http_server: HttpServer
) -> None:
    am = publisher(alertmanager.url)
    am.sync("OpsctlJobFailing", [failing("files.cleanup"), failing("logs.cleanup")],
            lambda labels: True)

    outcome = am.sync("OpsctlJobFailing", [failing("logs.cleanup")], lambda labels: True)

    assert (outcome.firing, outcome.resolved) == (1, 1)
    assert [a["labels"]["opsctl_job"] for a in active(alertmanager)] == ["logs.cleanup"]
    resolved = notifications(http_server, "resolved")
    assert resolved and {a["labels"]["opsctl_job"] for a in resolved[0]["alerts"]
                         if a["status"] == "resolved"} == {"files.cleanup"}


def test_alerts_this_run_did_not_judge_are_left_alone(alertmanager: Server) -> None:
    am = publisher(alertmanager.url)
    am.sync("OpsctlJobFailing", [failing("files.cleanup")], lambda labels: True)

    outcome = am.sync("OpsctlJobFailing", [],
                      lambda labels: labels.get("opsctl_job") == "logs.cleanup")

    assert (outcome.firing, outcome.resolved) == (0, 0)
    assert len(active(alertmanager)) == 1


def test_other_alert_names_are_not_touched(alertmanager: Server) -> None:
    am = publisher(alertmanager.url)
    am.sync("OpsctlJobFailing", [failing("files.cleanup")], lambda labels: True)

    am.sync("OpsctlUnhealthy", [], lambda labels: True)

    assert len(active(alertmanager)) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_alertmanager_is_an_outcome_not_an_exception() -> None:
    outcome = publisher(f"http://127.0.0.1:{closed_port()}").sync(
        "OpsctlJobFailing", [failing("files.cleanup")], lambda labels: True)

    assert not outcome.ok and outcome.details["kind"] == "refused"


def test_a_5xx_is_an_outcome(http_server: HttpServer) -> None:
    http_server.status = 503

    outcome = publisher(http_server.url).sync("OpsctlJobFailing", [failing("x")],
                                              lambda labels: True)

    assert not outcome.ok and outcome.error == "Alertmanager answered HTTP 503"


def test_an_answer_that_is_not_json_is_an_outcome_and_the_alert_is_still_sent(
    http_server: HttpServer,
) -> None:
    http_server.body = b"OK"  # a login proxy, or a wrong path in front of Alertmanager

    outcome = publisher(http_server.url).sync("OpsctlJobFailing", [failing("x")],
                                              lambda labels: True)

    assert not outcome.ok and outcome.details["kind"] == "bad_response"
    assert "not JSON" in (outcome.error or "") and outcome.firing == 1
    posted = [r for r in http_server.requests if r.method == "POST"]
    assert len(posted) == 1
    assert json.loads(posted[0].body)[0]["labels"]["opsctl_job"] == "x"


def test_a_failed_read_of_active_alerts_still_sends_the_firing_alert(
    http_server: HttpServer,
) -> None:
    http_server.responder = lambda rec: (403, b"no") if rec.method == "GET" else (200, b"")

    outcome = publisher(http_server.url).sync("OpsctlJobFailing", [failing("x")],
                                              lambda labels: True)

    assert not outcome.ok and outcome.error == (
        "Alertmanager answered HTTP 403; firing alerts sent, none resolved")
    assert [r.method for r in http_server.requests] == ["GET", "POST"]
