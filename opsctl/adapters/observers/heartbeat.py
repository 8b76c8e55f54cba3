"""Heartbeat pings (dead man's switches) in the healthchecks.io or the Cronitor style.

A service such as healthchecks.io raises the alarm when a ping does *not* arrive, so it
catches what no job can report about itself: cron disabled, the host gone, a PATH that no
longer finds opsctl. A ping must never cost the job anything, so:

* the start ping goes out in a background thread while the job works;
* the end ping, and whatever is left of the start ping, get ``2 * timeout_s`` in all (one
  attempt and one retry) from the moment the job is done; a ping still hanging then is
  abandoned in its daemon thread, which never delays the exit;
* a ping that fails is a ``heartbeat_sent`` event with ``ok: false``, never an exit code.

URLs are secrets (the ping key is in the path): no event or message carries one.

The pings use the standard library's HTTP client: two small requests do not need httpx,
and importing it would cost a short job more than everything else here together (the
Prometheus client loads ``urllib.request`` anyway).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opsctl import __version__
from opsctl.events import rfc3339
from opsctl.ports import RunEnd, RunStart

MAX_BODY_BYTES = 100_000  # what healthchecks.io keeps of a ping body
ATTEMPTS = 2  # one retry

Style = Literal["healthchecks", "cronitor"]
Emit = Callable[..., None]


@dataclass(frozen=True)
class Ping:
    """One request of the heartbeat protocol."""

    phase: Literal["start", "success", "fail"]
    method: str
    url: str
    body: bytes | None = None


def ping_for_start(style: Style, url: str, run_id: str) -> Ping:
    if style == "cronitor":
        return Ping("start", "GET", with_query(url, state="run", series=run_id))
    return Ping("start", "GET", with_query(with_path(url, "start"), rid=run_id))


def ping_for_end(style: Style, url: str, run: RunEnd) -> Ping:
    phase: Literal["success", "fail"] = "success" if run.succeeded else "fail"
    if style == "cronitor":
        state = "complete" if run.succeeded else "fail"
        return Ping(phase, "GET", with_query(url, state=state, series=run.run_id,
                                             status_code=str(run.exit_code)))
    target = url if run.succeeded else with_path(url, "fail")
    return Ping(phase, "POST", with_query(target, rid=run.run_id), body_of(run))


def body_of(run: RunEnd) -> bytes:
    """The run's last line as JSON, cut to what healthchecks.io keeps."""
    data = json.dumps(run.event, default=_json_default, ensure_ascii=False).encode()
    return data[:MAX_BODY_BYTES]


def with_path(url: str, segment: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + segment))


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    return str(value)


@dataclass
class _Sending:
    """One ping going out in a daemon thread: at most ``ATTEMPTS`` tries."""

    ping: Ping
    timeout_s: float
    done: threading.Event = field(default_factory=threading.Event)
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None

    def begin(self) -> _Sending:
        threading.Thread(target=self._send, name=f"heartbeat-{self.ping.phase}",
                         daemon=True).start()
        return self

    @property
    def ok(self) -> bool:
        return self.done.is_set() and self.http_status is not None and (
            200 <= self.http_status < 300)

    def _send(self) -> None:
        try:
            for _ in range(ATTEMPTS):
                self.attempts += 1
                self.http_status, self.error = _request(self.ping, self.timeout_s)
                if self.http_status is not None and self.http_status < 500:
                    return  # answered: a 4xx will not get better by asking again
        except Exception as exc:  # a bug must not escape a daemon thread unseen
            self.error = f"internal: {type(exc).__name__}"
        finally:
            self.done.set()


def _request(ping: Ping, timeout_s: float) -> tuple[int | None, str | None]:
    """One attempt: the HTTP status (and ``status`` when it is not 2xx), or the reason
    there was none."""
    headers = {"User-Agent": f"opsctl/{__version__}"}
    if ping.body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(ping.url, data=ping.body, method=ping.method,  # noqa: S310
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return None, _kind(exc)
    return status, None if 200 <= status < 300 else "status"


def _kind(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timeout"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    return "unreachable"


class HeartbeatObserver:
    """The ``RunObserver`` that pings one URL per job."""

    def __init__(self, url: str, style: Style, timeout_s: float, emit: Emit,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url, self.style, self.timeout_s = url, style, timeout_s
        self._emit = emit
        self._monotonic = monotonic
        self._start: _Sending | None = None

    def run_started(self, run: RunStart) -> None:
        ping = ping_for_start(self.style, self.url, run.run_id)
        self._start = _Sending(ping, self.timeout_s).begin()

    def run_ended(self, run: RunEnd) -> None:
        deadline = self._monotonic() + ATTEMPTS * self.timeout_s
        if self._start is not None:
            self._wait(self._start, deadline)
            self._report(self._start)
        end = _Sending(ping_for_end(self.style, self.url, run), self.timeout_s).begin()
        self._wait(end, deadline)
        self._report(end)

    def _wait(self, sending: _Sending, deadline: float) -> None:
        sending.done.wait(max(0.0, deadline - self._monotonic()))

    def _report(self, sending: _Sending) -> None:
        phase = sending.ping.phase
        fields: dict[str, Any] = {"phase": phase, "ok": sending.ok, "style": self.style,
                                  "attempts": sending.attempts}
        if sending.http_status is not None:
            fields["http_status"] = sending.http_status
        if sending.ok:
            self._emit("heartbeat_sent", f"heartbeat {phase} ping sent", level="info", **fields)
            return
        if not sending.done.is_set():
            kind, message = "timeout", f"no answer within {ATTEMPTS * self.timeout_s:g}s"
        elif sending.error == "status":
            kind, message = "status", f"answered HTTP {sending.http_status}"
        elif sending.error == "timeout":
            kind, message = "timeout", f"no answer within {self.timeout_s:g}s, twice"
        else:
            kind, message = sending.error or "failed", "could not be sent"
        self._emit("heartbeat_sent", f"heartbeat {phase} ping failed: {message}",
                   level="warning", error={"kind": kind, "message": message}, **fields)
