"""The probe's judgement and its deadline, with in-memory probes (fakes of the ``Probe`` port)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opsctl.errors import DatabaseUnavailable, UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import health_probe
from opsctl.jobs.context import JobContext
from opsctl.jobs.health_probe import ProbeParams, select_checks
from opsctl.ports import CheckFinding, ConfiguredCheck
from opsctl.runtime import Runtime


@dataclass
class Fixed:
    """Answers at once with a given finding (or raises a given error)."""

    finding: CheckFinding = field(default_factory=CheckFinding)
    raises: BaseException | None = None
    budgets: list[float] = field(default_factory=list)

    def check(self, timeout_s: float) -> CheckFinding:
        self.budgets.append(timeout_s)
        if self.raises is not None:
            raise self.raises
        return self.finding


@dataclass
class Hung:
    """Never answers until the test releases it: a dependency that hangs."""

    release: threading.Event

    def check(self, timeout_s: float) -> CheckFinding:
        self.release.wait(30)
        return CheckFinding()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let abandoned threads end with the test


def configured(name: str, probe: Any, *, kind: str = "tcp", critical: bool = True,
               timeout_s: float | None = None) -> ConfiguredCheck:
    return ConfiguredCheck(name, kind, critical, timeout_s, probe)


def probe(*checks: ConfiguredCheck, timeout_s: float = 5.0
          ) -> tuple[Any, list[dict[str, Any]]]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, run_id="r1")
    ctx = JobContext("health.probe", runtime, Emitter(runtime, "health.probe"))
    result = health_probe.run(ctx, list(checks), ProbeParams(timeout_s=timeout_s))
    return result, [json.loads(line) for line in out.getvalue().splitlines()]


CHECK_KEYS = {"check", "kind", "state", "critical", "latency_ms"}


def test_all_ok_is_healthy_and_emits_one_event_per_check_in_config_order() -> None:
    result, events = probe(
        configured("db", Fixed(CheckFinding(detail={"backend": "sqlite"})), kind="database"),
        configured("port", Fixed()),
    )

    assert (result.state, result.exit_code) == ("healthy", ExitCode.OK)
    assert [e["type"] for e in events] == ["health_check", "health_check"]
    first, second = events
    assert {k: first[k] for k in CHECK_KEYS} == {
        "check": "db", "kind": "database", "state": "ok", "critical": True,
        "latency_ms": first["latency_ms"],
    }
    assert isinstance(first["latency_ms"], int) and first["latency_ms"] >= 0
    assert first["detail"] == {"backend": "sqlite"}
    assert "error" not in first and "status" not in first
    assert (second["check"], second["state"], "detail" in second) == ("port", "ok", False)
    assert first["level"] == "info"
    summary = result.summary()
    assert {k: summary[k] for k in ("state", "exit_code", "checks_total", "checks_failed",
                                    "checks_warning", "checks_critical", "failed_checks",
                                    "timeout_s")} == {
        "state": "healthy", "exit_code": 0, "checks_total": 2, "checks_failed": 0,
        "checks_warning": 0, "checks_critical": 0, "failed_checks": [], "timeout_s": 5.0,
    }
    assert result.message == "healthy: 2 checks ok"


def test_a_warning_makes_the_probe_degraded() -> None:
    slow = CheckFinding("warning", "slow", "answered in 900 ms (max_latency_ms 500)")
    result, events = probe(configured("api", Fixed(slow), kind="http"),
                           configured("db", Fixed()))

    assert (result.state, result.exit_code) == ("degraded", ExitCode.WARNING)
    assert events[0]["state"] == "warning"
    assert events[0]["level"] == "warning"
    assert events[0]["error"] == {"kind": "slow",
                                  "message": "answered in 900 ms (max_latency_ms 500)"}
    assert result.fields["failed_checks"] == ["api"]
    assert result.fields["checks_warning"] == 1
    assert result.message == "degraded: 1 of 2 checks failed (api)"


def test_a_failing_critical_check_makes_the_probe_unhealthy_over_any_warning() -> None:
    down = CheckFinding("critical", "refused", "connection refused")
    slow = CheckFinding("warning", "slow", "slow")
    result, events = probe(configured("a", Fixed(slow)), configured("b", Fixed(down)),
                           configured("c", Fixed()))

    assert (result.state, result.exit_code) == ("unhealthy", ExitCode.CRITICAL)
    assert [e["state"] for e in events] == ["warning", "critical", "ok"]
    assert events[1]["level"] == "error"
    assert events[1]["error"] == {"kind": "refused", "message": "connection refused"}
    assert (result.fields["checks_failed"], result.fields["checks_critical"]) == (2, 1)


def test_a_failing_check_with_critical_false_only_degrades() -> None:
    down = CheckFinding("critical", "status", "status 503 (expected 2xx or 3xx)")
    result, events = probe(configured("api", Fixed(down), kind="http", critical=False))

    assert (result.state, result.exit_code) == ("degraded", ExitCode.WARNING)
    assert (events[0]["state"], events[0]["critical"]) == ("warning", False)
    assert events[0]["error"]["kind"] == "status"


def test_an_unreachable_dependency_is_a_critical_finding_not_an_error() -> None:
    result, events = probe(configured(
        "db", Fixed(raises=DatabaseUnavailable("database unavailable: refused")),
        kind="database"))

    assert (result.state, result.exit_code) == ("unhealthy", ExitCode.CRITICAL)
    assert events[0]["error"] == {"kind": "database_unavailable",
                                  "message": "database unavailable: refused"}


def test_a_bug_in_one_check_is_reported_as_internal_and_the_others_still_run() -> None:
    result, events = probe(configured("broken", Fixed(raises=KeyError("x"))),
                           configured("fine", Fixed()))

    assert [e["state"] for e in events] == ["critical", "ok"]
    assert events[0]["error"] == {"kind": "internal", "message": "KeyError: 'x'"}
    assert result.exit_code == ExitCode.CRITICAL


def test_each_probe_gets_its_own_timeout_capped_by_the_deadline() -> None:
    own, default, capped = Fixed(), Fixed(), Fixed()
    probe(configured("own", own, timeout_s=2.0), configured("default", default),
          configured("capped", capped, timeout_s=60.0), timeout_s=3.0)

    assert (own.budgets, default.budgets, capped.budgets) == ([2.0], [3.0], [3.0])


def test_six_hung_checks_take_the_deadline_once_not_six_times(
    release: threading.Event,
) -> None:
    checks = [configured(f"hung-{i}", Hung(release), kind="http") for i in range(6)]

    result, events = probe(*checks, timeout_s=0.3)

    assert (result.state, result.exit_code) == ("unhealthy", ExitCode.CRITICAL)
    assert [e["error"] for e in events] == [
        {"kind": "timeout", "message": "no answer within 0.3s"}] * 6
    # The feature itself: six 0.3 s waits in parallel, not 1.8 s in a row.
    assert result.fields["duration_ms"] < 1500


def test_a_check_timing_out_before_the_deadline_with_critical_false_is_a_warning(
    release: threading.Event,
) -> None:
    result, events = probe(
        configured("slowpoke", Hung(release), critical=False, timeout_s=0.1),
        configured("fine", Fixed()), timeout_s=10.0)

    assert events[0]["state"] == "warning"
    assert events[0]["error"] == {"kind": "timeout", "message": "no answer within 0.1s"}
    assert events[1]["state"] == "ok"
    assert result.exit_code == ExitCode.WARNING
    assert result.fields["duration_ms"] < 5000


def test_no_checks_is_healthy_with_nothing_counted() -> None:
    result, events = probe()

    assert events == []
    assert (result.state, result.fields["checks_total"]) == ("healthy", 0)


# --- --check selection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    name: str


CONFIGURED = [Named("db"), Named("api"), Named("disk")]


def test_select_checks_keeps_config_order_and_everything_when_none_is_named() -> None:
    assert select_checks(CONFIGURED, []) == CONFIGURED
    assert select_checks(CONFIGURED, ["disk", "db", "disk"]) == [Named("db"), Named("disk")]


def test_select_checks_rejects_unknown_names_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        select_checks(CONFIGURED, ["db", "apu", "dsk"])

    assert caught.value.exit_code == ExitCode.USAGE
    assert str(caught.value) == "unknown check 'apu', 'dsk'; configured checks: db, api, disk"


def test_a_check_that_never_returns_does_not_keep_the_process_alive() -> None:
    script = """
import io, threading
from opsctl.events import Emitter
from opsctl.jobs import health_probe
from opsctl.jobs.context import JobContext
from opsctl.jobs.health_probe import ProbeParams
from opsctl.ports import ConfiguredCheck
from opsctl.runtime import Runtime

class Forever:
    def check(self, timeout_s):
        threading.Event().wait()

runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={})
ctx = JobContext("health.probe", runtime, Emitter(runtime, "health.probe"))
checks = [ConfiguredCheck("stuck", "disk", True, None, Forever())]
result = health_probe.run(ctx, checks, ProbeParams(timeout_s=0.2))
print(result.state, int(result.exit_code))
"""
    # A process waiting for the stuck thread would never end: the timeout would raise.
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False, cwd=Path(__file__).resolve().parents[2])

    assert (proc.returncode, proc.stdout.strip()) == (0, "unhealthy 2")
