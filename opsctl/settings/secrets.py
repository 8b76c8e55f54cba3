"""What of the configuration is secret: masked for ``config show``, scrubbed from events."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pydantic import SecretStr

from opsctl.settings.model import Settings, database_url, set_password, storage_root
from opsctl.settings.monitoring import WATCHED_JOBS

_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def _mask_url(url: str) -> str:
    if urlsplit(url).password is not None:
        url = set_password(url, "***")
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _url_passwords(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    return found


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration for ``config show``: defaults resolved, secrets masked."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "***"
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    data: dict[str, Any] = plain(settings.model_dump())
    data["database"]["url"] = _mask_url(database_url(settings))
    data["storage"]["root"] = str(storage_root(settings))
    if settings.prometheus.pushgateway_url is not None:
        data["prometheus"]["pushgateway_url"] = _mask_url(settings.prometheus.pushgateway_url)
    return data


def _heartbeat_urls(settings: Settings) -> list[str]:
    """Every URL a job may ping, as pinged: a template's ``{job}`` filled in, and the part
    of the template before ``{job}`` (where the ping key sits)."""
    heartbeat = settings.heartbeat
    found = [url for job in WATCHED_JOBS if (url := heartbeat.url_for(job))]
    for template in (heartbeat.url, *heartbeat.jobs.values()):
        if template is not None:
            head = template.get_secret_value().partition("{job}")[0]
            if len(urlsplit(head).path.strip("/")) >= 8:  # a key, not just a host
                found.append(head)
    return found


def secret_values(settings: Settings) -> list[str]:
    """Every secret's plain value, longest first, for the event emitter to scrub."""
    found: list[str] = []
    if settings.database.url is not None:
        found += _url_passwords(settings.database.url.get_secret_value())
    for secret in (
        settings.database.password,
        settings.s3.access_key_id,
        settings.s3.secret_access_key,
        settings.alerts.webhook_url,
        *(getattr(check, "url", None) for check in settings.health.checks),
        settings.heartbeat.url,
        *settings.heartbeat.jobs.values(),
    ):
        if isinstance(secret, SecretStr):
            found.append(secret.get_secret_value())
    found += _heartbeat_urls(settings)
    if settings.prometheus.pushgateway_url is not None:
        found += _url_passwords(settings.prometheus.pushgateway_url)
    if settings.database.password is not None:
        # As it appears once injected into the URL.
        found.append(quote(settings.database.password.get_secret_value(), safe=""))
    return sorted({value for value in found if value}, key=lambda value: (-len(value), value))
