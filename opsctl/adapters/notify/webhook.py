"""The alert webhook: one JSON POST, retried once, that never fails the run.

A webhook that is down must not turn a CRITICAL check into UNKNOWN, so nothing here
raises: the outcome comes back as a ``Delivery`` for the job to report. The URL is a
secret (Slack-style webhook URLs carry their token in the path), so no message built
here contains it, whatever the HTTP client put in its exception text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx

from opsctl import __version__
from opsctl.ports import Delivery

# Worth a second try: the receiver may be restarting or rate limiting. Any other 4xx says
# the request itself is wrong, and sending it again would only repeat the answer.
_RETRY_STATUSES = frozenset({408, 429})


class WebhookNotifier:
    """``Notifier`` posting to one URL, ``retries`` more times after a failed attempt."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        retries: int = 1,
        retry_delay_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return "WebhookNotifier(url=***)"

    def send(self, payload: dict[str, Any]) -> Delivery:
        error: str | None = "not attempted"
        attempts = 0
        headers = {"User-Agent": f"opsctl/{__version__}"}
        with self._quiet_url(), httpx.Client(timeout=self.timeout_s, headers=headers,
                                             follow_redirects=False) as client:
            for attempts in range(1, self.retries + 2):
                if attempts > 1 and self.retry_delay_s > 0:
                    self._sleep(self.retry_delay_s)
                retry, error = self._attempt(client, payload)
                if error is None:
                    return Delivery(True, attempts)
                if not retry:
                    break
        return Delivery(False, attempts, error)

    def _attempt(self, client: httpx.Client, payload: dict[str, Any]) -> tuple[bool, str | None]:
        """(worth retrying, error) of one POST; error None means delivered."""
        try:
            response = client.post(self._url, json=payload)
        except httpx.TimeoutException:
            return True, f"no answer within {self.timeout_s:g}s (alerts.timeout_s)"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return True, f"{type(exc).__name__}: {self._scrub(str(exc)) or 'connection failed'}"
        if response.is_success:
            return False, None
        status = response.status_code
        retry = status >= 500 or status in _RETRY_STATUSES
        return retry, f"the webhook answered HTTP {status}"

    @contextmanager
    def _quiet_url(self) -> Iterator[None]:
        """httpx logs every request's full URL at INFO, so ``--log-level info`` would print
        the secret on stderr; its records are scrubbed while we send."""
        scrubber = _Scrubber(self._scrub)
        loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
        for logger in loggers:
            logger.addFilter(scrubber)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(scrubber)

    def _scrub(self, text: str) -> str:
        parts = urlsplit(self._url)
        for secret in (self._url, parts.path + (f"?{parts.query}" if parts.query else ""),
                       parts.path, parts.query):
            if len(secret) > 1:
                text = text.replace(secret, "***")
        return text


class _Scrubber(logging.Filter):
    def __init__(self, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = self._scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
