"""failure-rate.check with in-memory fakes of its ports: states, exact numbers, and the
alert's life across runs (open, cooldown, retry after a failed delivery, resolve)."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.failure_rate_check import (
    ALERT_NAME,
    FailureRateParams,
    FailureRatePorts,
    classify,
    run,
)
from opsctl.jobs.result import JobResult
from opsctl.ports import AlertState, Delivery, ErrorTypeCount, OutcomeCounts
from opsctl.runtime import Runtime

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class FakeCounts:
    def __init__(self, completed: int, failed: int,
                 top: tuple[ErrorTypeCount, ...] = ()) -> None:
        self.value = OutcomeCounts(completed, failed, top)
        self.calls: list[tuple[datetime, datetime, int]] = []

    def counts(self, start: datetime, end: datetime, top: int) -> OutcomeCounts:
        self.calls.append((start, end, top))
        return self.value


class FakeAlerts:
    def __init__(self) -> None:
        self.rows: dict[str, AlertState] = {}
        self.saves = 0

    def load(self, name: str) -> AlertState | None:
        return self.rows.get(name)

    def save(self, state: AlertState) -> None:
        self.saves += 1
        self.rows[state.name] = state


@dataclass
class FakeNotifier:
    deliver: bool = True
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, payload: dict[str, Any]) -> Delivery:
        self.sent.append(payload)
        if self.deliver:
            return Delivery(True, 1)
        return Delivery(False, 2, "the webhook answered HTTP 503")


@dataclass
class World:
    """The ports and the clock, kept across runs as cron would keep the database."""

    counts: FakeCounts
    alerts: FakeAlerts = field(default_factory=FakeAlerts)
    notifier: FakeNotifier | None = field(default_factory=FakeNotifier)
    now: datetime = T0
    events: list[dict[str, Any]] = field(default_factory=list)

    def run(self, params: FailureRateParams | None = None, *, dry_run: bool = False,
            completed: int | None = None, failed: int | None = None,
            after: timedelta = timedelta(0)) -> JobResult:
        self.now += after
        if completed is not None or failed is not None:
            current = self.counts.value
            self.counts.value = OutcomeCounts(
                current.completed if completed is None else completed,
                current.failed if failed is None else failed,
                current.top_error_types,
            )
        out = io.StringIO()
        runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, output="json",
                          clock=lambda: self.now, run_id="run-1", host="host-a")
        ctx = JobContext("failure-rate.check", runtime, Emitter(runtime, "failure-rate.check"),
                         dry_run=dry_run)
        ports = FailureRatePorts(self.counts, self.alerts, self.notifier)
        result = run(ctx, ports, params or PARAMS)
        self.events = [json.loads(line) for line in out.getvalue().splitlines()]
        return result

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]


PARAMS = FailureRateParams(window=timedelta(minutes=60), threshold=0.10, warning=0.05,
                           min_samples=5, cooldown=timedelta(minutes=30), top_errors=3)
TOP = (ErrorTypeCount("timeout", 3), ErrorTypeCount("s3_error", 2))


# --- classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completed", "failed", "state", "rate"),
    [
        (95, 5, "ok", 0.05),  # exactly at the warning: not above it
        (94, 6, "warning", 0.06),
        (9, 1, "warning", 0.1),  # exactly at the threshold: not above it
        (35, 5, "alert", 0.125),
        (0, 5, "alert", 1.0),
        (5, 0, "ok", 0.0),
        (3, 1, "insufficient_samples", 0.25),  # 4 finished < min_samples 5
        (0, 0, "insufficient_samples", None),
    ],
)
def test_classify_states_and_boundaries(
    completed: int, failed: int, state: str, rate: float | None
) -> None:
    assert classify(OutcomeCounts(completed, failed), PARAMS) == (state, rate)


def test_no_exports_is_insufficient_even_with_min_samples_zero() -> None:
    params = FailureRateParams(timedelta(hours=1), 0.1, 0.05, 0, timedelta(minutes=30))
    assert classify(OutcomeCounts(0, 0), params) == ("insufficient_samples", None)
    assert classify(OutcomeCounts(1, 0), params) == ("ok", 0.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"threshold": 1.5}, "threshold must be between 0 and 1"),
        ({"threshold": float("nan")}, "threshold must be between 0 and 1"),
        ({"warning": -0.1}, "warning must be between 0 and 1"),
        ({"warning": 0.2}, "warning (0.2) must not exceed threshold (0.1)"),
        ({"min_samples": -1}, "min_samples must be >= 0"),
        ({"window": timedelta(0)}, "window must be greater than zero"),
    ],
)
def test_params_reject_bad_values(changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"window": timedelta(hours=1), "threshold": 0.1, "warning": 0.05,
                              "min_samples": 5, "cooldown": timedelta(minutes=30), **changes}
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        FailureRateParams(**values)


# --- one run ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completed", "failed", "state", "code"),
    [(95, 5, "ok", ExitCode.OK), (94, 6, "warning", ExitCode.WARNING),
     (35, 5, "alert", ExitCode.CRITICAL), (2, 1, "insufficient_samples", ExitCode.OK)],
)
def test_exit_code_follows_state(completed: int, failed: int, state: str, code: ExitCode) -> None:
    result = World(FakeCounts(completed, failed)).run()
    assert (result.state, result.exit_code) == (state, code)


def test_summary_fields_and_window() -> None:
    world = World(FakeCounts(94, 6, TOP))
    result = world.run()
    assert world.counts.calls == [(T0 - timedelta(hours=1), T0, 3)]
    assert result.summary() == {
        "window_start": "2026-11-23T09:00:00.000Z",
        "window_end": "2026-11-23T10:00:00.000Z",
        "total": 100,
        "completed": 94,
        "failed": 6,
        "failure_rate": 0.06,
        "threshold": 0.10,
        "warning": 0.05,
        "min_samples": 5,
        "window": "1h",
        "top_error_types": [{"error_type": "timeout", "count": 3},
                            {"error_type": "s3_error", "count": 2}],
        "alert_open": False,
        "alert_transition": None,
        "notified": False,
        "suppressed_by_cooldown": False,
        "notification": None,
        "dry_run": False,
        "state": "warning",
        "exit_code": 1,
    }
    assert result.message == ("failure rate 6.0 % above the warning threshold 5.0 % "
                              "(6 of 100 exports failed in the last 1h)")
    assert world.events == []  # a warning notifies nobody
    assert world.notifier is not None and world.notifier.sent == []
    assert world.alerts.saves == 0


def test_alert_opens_notifies_and_saves_state() -> None:
    world = World(FakeCounts(35, 5, TOP))
    result = world.run()

    assert (result.state, result.exit_code) == ("alert", ExitCode.CRITICAL)
    assert result.fields["alert_transition"] == "opened"
    assert (result.fields["notified"], result.fields["notification"]) == (True, "sent")
    [event] = world.of_type("export_failure_alert")
    assert {k: event[k] for k in (
        "level", "severity", "failure_rate", "threshold", "total", "failed", "top_error_types",
        "notified", "suppressed_by_cooldown", "opened_at", "dry_run")} == {
        "level": "error", "severity": "high", "failure_rate": 0.125, "threshold": 0.1,
        "total": 40, "failed": 5,
        "top_error_types": [{"error_type": "timeout", "count": 3},
                            {"error_type": "s3_error", "count": 2}],
        "notified": True, "suppressed_by_cooldown": False,
        "opened_at": "2026-11-23T10:00:00.000Z", "dry_run": False,
    }
    assert "notify_error" not in event

    assert world.notifier is not None
    [payload] = world.notifier.sent
    assert payload["type"] == "export_failure_alert"
    assert payload["severity"] == "high"
    assert (payload["failure_rate"], payload["threshold"], payload["warning"]) == (0.125, 0.1, 0.05)
    assert (payload["total"], payload["completed"], payload["failed"]) == (40, 35, 5)
    assert payload["window_start"] == "2026-11-23T09:00:00.000Z"
    assert payload["window_end"] == "2026-11-23T10:00:00.000Z"
    assert payload["opened_at"] == "2026-11-23T10:00:00.000Z"
    assert (payload["host"], payload["run_id"], payload["job"]) == (
        "host-a", "run-1", "failure-rate.check")
    assert payload["text"] == (
        "[opsctl] ALERT on host-a: export failure rate 12.5 % is above 10.0 % "
        "(5 of 40 exports failed in the last 1h); top errors: timeout (3), s3_error (2)")

    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.state, saved.opened_at, saved.last_notified_at, saved.updated_at) == (
        "open", T0, T0, T0)
    assert saved.details["failure_rate"] == 0.125


def test_second_alert_inside_cooldown_is_suppressed() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    result = world.run(after=timedelta(minutes=29, seconds=59))

    assert result.exit_code == ExitCode.CRITICAL
    assert result.fields["suppressed_by_cooldown"] is True
    assert (result.fields["notified"], result.fields["notification"]) == (
        False, "suppressed_by_cooldown")
    assert result.fields["alert_transition"] is None
    [event] = world.of_type("export_failure_alert")
    assert (event["notified"], event["suppressed_by_cooldown"]) == (False, True)
    assert event["opened_at"] == "2026-11-23T10:00:00.000Z"
    assert world.notifier is not None and len(world.notifier.sent) == 1
    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.opened_at, saved.last_notified_at) == (T0, T0)
    assert saved.updated_at == T0 + timedelta(minutes=29, seconds=59)


def test_alert_notifies_again_once_the_cooldown_has_passed() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    world.run(after=timedelta(minutes=10))  # suppressed
    result = world.run(after=timedelta(minutes=20))  # exactly 30 minutes after the notice

    assert (result.fields["notified"], result.fields["suppressed_by_cooldown"]) == (True, False)
    assert world.notifier is not None and len(world.notifier.sent) == 2
    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.opened_at, saved.last_notified_at) == (T0, T0 + timedelta(minutes=30))


def test_zero_cooldown_notifies_every_run() -> None:
    params = FailureRateParams(timedelta(hours=1), 0.1, 0.05, 5, timedelta(0))
    world = World(FakeCounts(35, 5))
    world.run(params)
    world.run(params)
    assert world.notifier is not None and len(world.notifier.sent) == 2


def test_undelivered_alert_does_not_start_the_cooldown(caplog: pytest.LogCaptureFixture) -> None:
    world = World(FakeCounts(35, 5), notifier=FakeNotifier(deliver=False))
    with caplog.at_level(logging.WARNING):
        result = world.run()

    assert result.exit_code == ExitCode.CRITICAL  # a dead webhook never changes the verdict
    assert (result.fields["notified"], result.fields["notification"]) == (False, "failed")
    [event] = world.of_type("export_failure_alert")
    assert (event["notified"], event["suppressed_by_cooldown"]) == (False, False)
    assert event["notify_error"] == "the webhook answered HTTP 503"
    assert [r.getMessage() for r in caplog.records] == [
        "webhook notification (export_failure_alert) failed after 2 attempt(s): "
        "the webhook answered HTTP 503"]
    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.state, saved.opened_at, saved.last_notified_at) == ("open", T0, None)

    # The webhook is back five minutes later: the next run sends at once.
    assert world.notifier is not None
    world.notifier.deliver = True
    result = world.run(after=timedelta(minutes=5))
    assert (result.fields["notified"], result.fields["suppressed_by_cooldown"]) == (True, False)
    assert len(world.notifier.sent) == 2
    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.opened_at, saved.last_notified_at) == (T0, T0 + timedelta(minutes=5))


def test_no_webhook_configured_still_tracks_the_alert() -> None:
    world = World(FakeCounts(35, 5), notifier=None)
    result = world.run()
    assert (result.fields["notified"], result.fields["notification"]) == (False, "no_webhook")
    [event] = world.of_type("export_failure_alert")
    assert (event["notified"], event["suppressed_by_cooldown"]) == (False, False)
    assert "notify_error" not in event
    assert world.alerts.rows[ALERT_NAME].state == "open"


# --- resolution ---------------------------------------------------------------------------


def test_alert_resolves_once_when_the_rate_drops() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    result = world.run(completed=98, failed=2, after=timedelta(minutes=10))

    assert (result.state, result.exit_code) == ("ok", ExitCode.OK)
    assert result.fields["alert_transition"] == "resolved"
    assert (result.fields["alert_open"], result.fields["notification"]) == (False, "sent")
    [event] = world.of_type("export_failure_resolved")
    assert (event["failure_rate"], event["notified"], event["level"]) == (0.02, True, "info")
    assert event["opened_at"] == "2026-11-23T10:00:00.000Z"
    assert world.of_type("export_failure_alert") == []
    assert world.notifier is not None
    resolved = world.notifier.sent[-1]
    assert resolved["type"] == "export_failure_resolved"
    assert (resolved["failure_rate"], resolved["total"], resolved["failed"]) == (0.02, 100, 2)
    assert resolved["opened_at"] == "2026-11-23T10:00:00.000Z"
    assert resolved["resolved_at"] == "2026-11-23T10:10:00.000Z"
    assert resolved["text"] == (
        "[opsctl] RESOLVED on host-a: export failure rate back to 2.0 % (threshold 10.0 %, "
        "2 of 100 exports failed in the last 1h)")
    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.state, saved.opened_at, saved.last_notified_at) == (
        "resolved", T0, T0 + timedelta(minutes=10))

    # Still fine later: nothing more to say.
    result = world.run(after=timedelta(minutes=10))
    assert result.fields["alert_transition"] is None
    assert world.events == []
    assert len(world.notifier.sent) == 2


def test_resolution_ignores_the_cooldown() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    world.run(completed=100, failed=0, after=timedelta(minutes=1))
    assert world.notifier is not None
    assert [p["type"] for p in world.notifier.sent] == [
        "export_failure_alert", "export_failure_resolved"]


def test_warning_resolves_an_open_alert() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    result = world.run(completed=92, failed=8, after=timedelta(minutes=5))  # 8 %: warning
    assert (result.state, result.exit_code) == ("warning", ExitCode.WARNING)
    assert result.fields["alert_transition"] == "resolved"
    assert len(world.of_type("export_failure_resolved")) == 1
    assert world.alerts.rows[ALERT_NAME].state == "resolved"


def test_insufficient_samples_keeps_an_open_alert_open() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    saves = world.alerts.saves
    result = world.run(completed=1, failed=0, after=timedelta(minutes=5))

    assert (result.state, result.exit_code) == ("insufficient_samples", ExitCode.OK)
    assert (result.fields["alert_open"], result.fields["alert_transition"]) == (True, None)
    assert result.fields["notification"] is None
    assert world.events == []
    assert world.alerts.saves == saves  # nothing written
    assert world.alerts.rows[ALERT_NAME].state == "open"
    assert world.notifier is not None and len(world.notifier.sent) == 1
    assert result.message == ("only 1 finished exports in the last 1h (min_samples 5): "
                              "not enough to judge")


def test_alert_after_resolution_opens_a_new_alert() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    world.run(completed=100, failed=0, after=timedelta(minutes=5))
    result = world.run(completed=35, failed=5, after=timedelta(minutes=5))
    assert result.fields["alert_transition"] == "opened"
    assert result.fields["notified"] is True  # the old alert's cooldown does not carry over
    saved = world.alerts.rows[ALERT_NAME]
    assert saved.opened_at == T0 + timedelta(minutes=10)


def test_undelivered_resolution_still_closes_the_alert() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    assert world.notifier is not None
    world.notifier.deliver = False
    result = world.run(completed=100, failed=0, after=timedelta(minutes=5))
    [event] = world.of_type("export_failure_resolved")
    assert (event["notified"], event["notify_error"]) == (False, "the webhook answered HTTP 503")
    assert result.fields["notification"] == "failed"
    saved = world.alerts.rows[ALERT_NAME]
    assert (saved.state, saved.last_notified_at) == ("resolved", T0)
    world.run(after=timedelta(minutes=5))
    assert world.of_type("export_failure_resolved") == []


# --- dry run --------------------------------------------------------------------------------


def test_dry_run_reports_an_alert_but_sends_and_saves_nothing() -> None:
    world = World(FakeCounts(35, 5))
    result = world.run(dry_run=True)
    assert (result.state, result.exit_code) == ("alert", ExitCode.CRITICAL)
    assert (result.fields["dry_run"], result.fields["notified"]) == (True, False)
    assert result.fields["notification"] == "dry_run"
    [event] = world.of_type("export_failure_alert")
    assert (event["notified"], event["dry_run"]) == (False, True)
    assert world.notifier is not None and world.notifier.sent == []
    assert world.alerts.rows == {} and world.alerts.saves == 0


def test_dry_run_reports_a_resolution_without_closing_the_alert() -> None:
    world = World(FakeCounts(35, 5))
    world.run()
    before = world.alerts.rows[ALERT_NAME]
    result = world.run(completed=100, failed=0, dry_run=True, after=timedelta(minutes=5))
    assert result.fields["alert_transition"] == "resolved"
    [event] = world.of_type("export_failure_resolved")
    assert (event["notified"], event["dry_run"]) == (False, True)
    assert world.notifier is not None and len(world.notifier.sent) == 1
    assert world.alerts.rows[ALERT_NAME] == before
