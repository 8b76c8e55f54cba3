"""The emitter is the contract's JSON shape: pin every common field and every refusal."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest

from opsctl.events import COMMON_FIELDS, Emitter, Redactor, rfc3339
from opsctl.runtime import Runtime

FIXED = datetime(2026, 11, 23, 9, 5, 7, 123456, tzinfo=UTC)


def make(output: str = "json", secrets: tuple[str, ...] = ()) -> tuple[Emitter, io.StringIO]:
    out = io.StringIO()
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, output=output,  # type: ignore[arg-type]
                      clock=lambda: FIXED, run_id="run-1", host="host-a", version="9.9.9")
    return Emitter(runtime, "metrics.aggregate", secrets), out


def test_every_line_carries_the_common_fields_in_order() -> None:
    emitter, out = make()
    emitter.emit("aggregated_metrics", "done", total_exports=3)
    event = json.loads(out.getvalue())
    assert list(event)[: len(COMMON_FIELDS)] == list(COMMON_FIELDS)
    assert event == {
        "timestamp": "2026-11-23T09:05:07.123Z", "level": "info", "message": "done",
        "logger": "opsctl.metrics.aggregate", "type": "aggregated_metrics",
        "job": "metrics.aggregate", "run_id": "run-1", "host": "host-a", "version": "9.9.9",
        "total_exports": 3,
    }


def test_timestamps_are_rfc3339_utc_with_milliseconds_and_z() -> None:
    assert rfc3339(FIXED) == "2026-11-23T09:05:07.123Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rfc3339(datetime.now(UTC)))


def test_levels_follow_the_argument() -> None:
    emitter, out = make()
    emitter.emit("error", "boom", level="error", error={"kind": "x", "message": "boom"})
    emitter.emit("metrics_threshold_warning", "slow", level="warning", metric="m")
    levels = [json.loads(line)["level"] for line in out.getvalue().splitlines()]
    assert levels == ["error", "warning"]


@pytest.mark.parametrize("field", ["status", "timestamp", "run_id", "type", "host"])
def test_a_top_level_status_or_common_field_is_refused(field: str) -> None:
    emitter, out = make()
    with pytest.raises(ValueError, match=field):
        emitter.emit("x", "y", **{field: "ok"})
    assert out.getvalue() == ""


def test_secrets_are_scrubbed_everywhere_in_the_line() -> None:
    emitter, out = make(secrets=("hunter2-s3cr3t", "https://hooks.example/T0K3N"))
    emitter.emit(
        "error", "login failed for hunter2-s3cr3t", level="error",
        error={"kind": "x", "message": "POST https://hooks.example/T0K3N refused"},
        urls=["postgresql://app:other-pass@db:5432/x"],
    )
    line = out.getvalue()
    assert "hunter2" not in line and "T0K3N" not in line and "other-pass" not in line
    event = json.loads(line)
    assert event["message"] == "login failed for ***"
    assert event["error"]["message"] == "POST *** refused"
    assert event["urls"] == ["postgresql://app:***@db:5432/x"]


def test_redactor_masks_url_passwords_it_was_not_told_about() -> None:
    assert Redactor().text("postgresql+psycopg://u:p%40ss@h/db") == "postgresql+psycopg://u:***@h/db"
    assert Redactor().text("no secret here") == "no secret here"


def test_text_mode_writes_nothing_to_stdout_and_feeds_the_sink() -> None:
    out = io.StringIO()
    seen: list[dict[str, object]] = []
    runtime = Runtime(stdout=out, stderr=io.StringIO(), env={}, output="text")
    Emitter(runtime, "files.cleanup", ("s3cr3t",), sink=seen.append).emit(
        "export_file_cleanup_error", "could not delete s3cr3t", level="error", file_path="a"
    )
    assert out.getvalue() == ""
    assert seen[0]["type"] == "export_file_cleanup_error"
    assert seen[0]["message"] == "could not delete ***"


def test_diagnostics_are_scrubbed_once_the_secrets_are_known() -> None:
    import logging

    from opsctl.events import configure_diagnostics

    err = io.StringIO()
    runtime = Runtime(stdout=io.StringIO(), stderr=err, env={}, output="text", log_level="info")
    redactor = Redactor()
    configure_diagnostics(runtime, redactor)
    try:
        redactor.add(["https://hooks.example/T0K3N"])
        logging.getLogger("opsctl.adapters.notify").info('HTTP Request: POST https://hooks.example/T0K3N "200"')
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(logging.WARNING)
    assert "T0K3N" not in err.getvalue()
    assert "POST ***" in err.getvalue()
