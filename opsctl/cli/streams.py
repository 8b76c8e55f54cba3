"""Standard streams that go quiet when the reader goes away.

``opsctl runs list | head -1`` closes the pipe after one line. Every writer (the JSON
event handler, rich, click's help) would then raise ``BrokenPipeError`` wherever it
happened to be, and the logging module would print ``--- Logging error ---`` for it. The
guard swallows the error once, drops every later write, and lets the run finish (a
cleanup is not abandoned half way because its log reader died); the entry point then
exits 141, the shell's code for a death by SIGPIPE, with no message.
"""

from __future__ import annotations

import errno
import os
from typing import Any, TextIO, cast

SIGPIPE_EXIT = 141


class GuardedStream:
    """A text stream proxy that turns a closed pipe into silence and a flag."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self.broken = False

    def write(self, text: str) -> int:
        if self.broken:
            return len(text)
        try:
            return self._inner.write(text)
        except OSError as exc:
            self._closed(exc)
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self._inner.flush()
        except OSError as exc:
            self._closed(exc)

    def isatty(self) -> bool:
        try:
            return self._inner.isatty()
        except (AttributeError, ValueError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _closed(self, exc: OSError) -> None:
        if not isinstance(exc, BrokenPipeError) and exc.errno not in (errno.EPIPE,
                                                                       errno.ECONNRESET):
            raise exc
        self.broken = True
        # The interpreter flushes the real stream once more at exit; point its descriptor
        # at /dev/null so that flush cannot fail and print "Exception ignored ...".
        try:
            fd = self._inner.fileno()
        except (AttributeError, OSError, ValueError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def guard(stream: TextIO) -> TextIO:
    if isinstance(stream, GuardedStream):
        return stream
    return cast(TextIO, GuardedStream(stream))


def broken(*streams: TextIO) -> bool:
    """True when a reader of one of the guarded ``streams`` went away."""
    return any(isinstance(s, GuardedStream) and s.broken for s in streams)
