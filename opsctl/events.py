"""The one place JSON events are made.

Log pipelines (Datadog, CloudWatch, Loki, Elastic) parse these lines, so every line carries
the same common fields, timestamps are RFC 3339 UTC with milliseconds and ``Z``, and no
line has a top-level ``status``: Datadog would take it for the log level. Secrets are
scrubbed here, last, so no caller can leak one by forgetting to.

python-json-logger does the serialisation; events and diagnostics share its formatter,
events going to stdout and diagnostics (``logging``) to stderr.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from opsctl.runtime import Runtime

COMMON_FIELDS = (
    "timestamp", "level", "message", "logger", "type", "job", "run_id", "host", "version"
)
FORBIDDEN_FIELDS = frozenset({"status"})
REDACTED = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@")

EventSink = Callable[[dict[str, Any]], None]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Redactor:
    """Replaces known secret values, and any password inside a URL, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secrets (the settings load after logging is already set up)."""
        known = set(self._secrets) | {s for s in secrets if s and len(s) >= 3}
        # Longest first, so a URL containing a password is replaced whole.
        self._secrets = sorted(known, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}@", value)

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    return str(value)


class EventFormatter(JsonFormatter):
    """Lays out common fields first, then the event's own, then scrubs secrets."""

    def __init__(self, runtime: Runtime, job: str | None, redactor: Redactor) -> None:
        super().__init__(json_default=_json_default, json_ensure_ascii=False)
        self._static = {
            "job": job, "run_id": runtime.run_id, "host": runtime.host, "version": runtime.version
        }
        self._redactor = redactor

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        event: dict[str, Any] = getattr(record, "event", None) or {"type": "log"}
        fields = {k: v for k, v in event.items() if k not in ("type", "timestamp")}
        stamp = event.get("timestamp") or datetime.fromtimestamp(record.created, tz=UTC)
        log_data.update(
            timestamp=rfc3339(stamp),
            level=record.levelname.lower(),
            message=record.getMessage(),
            logger=record.name,
            type=event["type"],
            **self._static,
        )
        log_data.update(fields)
        if "exc_info" in message_dict:
            log_data["traceback"] = message_dict["exc_info"]

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        redacted: dict[str, Any] = self._redactor.value(log_data)
        return redacted


class Emitter:
    """Emits the events of one invocation.

    In JSON mode each event is one line on stdout. In text mode events go to ``sink`` (the
    CLI's renderer) instead, so people get tables while cron gets JSON from the same run.
    """

    def __init__(
        self,
        runtime: Runtime,
        job: str | None = None,
        secrets: Iterable[str] = (),
        sink: EventSink | None = None,
    ) -> None:
        self.runtime = runtime
        self.job = job
        self.redactor = Redactor(secrets)
        self._sink = sink
        self._logger = logging.Logger(f"opsctl.{job}" if job else "opsctl")
        self._logger.propagate = False
        handler = logging.StreamHandler(runtime.stdout)
        handler.setFormatter(EventFormatter(runtime, job, self.redactor))
        self._logger.addHandler(handler)

    def for_job(self, job: str) -> Emitter:
        clone = Emitter(self.runtime, job, sink=self._sink)
        clone.redactor = self.redactor
        for handler in clone._logger.handlers:
            handler.setFormatter(EventFormatter(self.runtime, job, self.redactor))
        return clone

    def emit(self, type_: str, message: str, *, level: str = "info", **fields: Any) -> None:
        bad = FORBIDDEN_FIELDS.intersection(fields) | set(COMMON_FIELDS).intersection(fields)
        if bad:
            raise ValueError(f"event {type_!r} may not set top-level field(s) {sorted(bad)}")
        event = {"type": type_, "timestamp": self.runtime.clock(), **fields}
        if self.runtime.output == "json":
            self._logger.log(
                logging.getLevelName(level.upper()), message, extra={"event": event}
            )
        elif self._sink is not None:
            self._sink(
                {"level": level, "message": self.redactor.text(message), "job": self.job,
                 **self.redactor.value(event)}
            )


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.text(super().format(record))


def configure_diagnostics(runtime: Runtime, redactor: Redactor) -> None:
    """Route ``logging`` (ours and the libraries') to stderr, as JSON in JSON mode.

    Libraries log URLs (httpx logs every request at INFO), so diagnostics are scrubbed
    with the same redactor as events; it learns the secrets once the settings load.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(runtime.stderr)
    if runtime.output == "json":
        handler.setFormatter(EventFormatter(runtime, None, redactor))
    else:
        handler.setFormatter(_RedactingFormatter(redactor))
    root.addHandler(handler)
    root.setLevel(runtime.log_level.upper())
    # httpx logs every request at INFO: noise in a cron log unless debugging.
    logging.getLogger("httpx").setLevel(logging.DEBUG if runtime.debug else logging.WARNING)
