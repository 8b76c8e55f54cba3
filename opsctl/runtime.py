"""The injectable runtime: everything a run needs from the outside world, in one object.

Streams, terminal detection, output mode, clock, run id, host and the dry-run switch are
read once at the entry point and handed down, so tests build a ``Runtime`` directly and
nothing deeper reads ``sys.stdout`` or ``datetime.now()`` behind their back.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Literal, TextIO

from opsctl import __version__
from opsctl.errors import Interrupted
from opsctl.exit_codes import ExitCode

OutputMode = Literal["json", "text"]
FALSY = frozenset({"", "0", "false", "no", "off"})


def utc_now() -> datetime:
    return datetime.now(UTC)


class StopSignal:
    """Turns SIGINT/SIGTERM into an orderly stop.

    Batch jobs are *cooperative*: the first signal only sets a flag that they check between
    batches, so the batch in flight finishes (or is abandoned) safely and the summary is
    written. Other jobs are short and are interrupted at once. A second signal always
    interrupts at once, so a stuck run can still be stopped by hand.
    """

    _CODES = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}

    def __init__(self) -> None:
        self._event = threading.Event()
        self.exit_code: ExitCode | None = None
        self.cooperative = False
        self.settled = False

    def settle(self) -> None:
        """The run's outcome is decided and about to be written: from now on a signal
        changes nothing, so the process exits with the code its summary states."""
        self.settled = True

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, exit_code: ExitCode) -> None:
        if self.settled:
            return
        first = not self._event.is_set()
        self.exit_code = self.exit_code or exit_code
        self._event.set()
        if not (first and self.cooperative):
            raise Interrupted(f"interrupted by signal (exit {exit_code.value})", exit_code)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, ending early when a stop is requested; True if it was.

        In slices of plain sleeps rather than ``Event.wait``: the signal handler sets the
        event from the same thread, and a handler that runs while the waiting thread holds
        the event's lock would deadlock.
        """
        due = time.monotonic() + seconds
        while not self.requested:
            left = due - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.05))
        return self.requested

    def raise_if_requested(self) -> None:
        if self.exit_code is not None:
            raise Interrupted(f"interrupted by signal (exit {self.exit_code.value})", self.exit_code)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.request(self._CODES[signal.Signals(signum)])

    @contextmanager
    def installed(self, *, cooperative: bool) -> Iterator[StopSignal]:
        """Install the handlers for the duration of a job (main thread only)."""
        self.cooperative = cooperative
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in self._CODES}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class Runtime:
    stdout: TextIO
    stderr: TextIO
    env: Mapping[str, str]
    output: OutputMode = "json"
    color: bool = False
    log_level: str = "info"
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    clock: Callable[[], datetime] = utc_now
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    host: str = field(default_factory=socket.gethostname)
    version: str = __version__
    stop: StopSignal = field(default_factory=StopSignal)

    @property
    def forced_dry_run(self) -> bool:
        """``OPSCTL_DRY_RUN=1`` turns every command into a dry run (CI's safety net)."""
        # A safety switch fails safe: any value but an explicit "off" turns it on.
        return self.env.get("OPSCTL_DRY_RUN", "").strip().lower() not in FALSY

    @property
    def debug(self) -> bool:
        return self.log_level == "debug"

    @property
    def progress(self) -> bool:
        """Progress bars only for a person watching a terminal, never in JSON mode."""
        return self.output == "text" and self.stderr_isatty


def resolve_output(requested: str, stdout_isatty: bool) -> OutputMode:
    if requested == "auto":
        return "text" if stdout_isatty else "json"
    return "json" if requested == "json" else "text"


def wants_color(no_color_flag: bool, env: Mapping[str, str], isatty: bool) -> bool:
    # https://no-color.org: any non-empty NO_COLOR disables colour.
    return isatty and not no_color_flag and not env.get("NO_COLOR")


def process_env() -> dict[str, str]:
    return dict(os.environ)
