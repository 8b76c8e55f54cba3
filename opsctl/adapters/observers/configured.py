"""The observers the configuration asks for, built for one job run.

Each adapter module is imported only when its section is configured, so a job without
``[heartbeat]`` or ``[prometheus]`` never loads their modules (nor an HTTP client).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from opsctl.ports import RunObserver
from opsctl.settings import Settings

LastSuccess = Callable[[str], datetime | None]


def observers_for(job: str, settings: Settings, *, host: str, emit: Callable[..., None],
                  last_success: LastSuccess) -> list[RunObserver]:
    found: list[RunObserver] = []
    heartbeat = settings.heartbeat
    url = heartbeat.url_for(job)
    if url is not None:
        from opsctl.adapters.observers.heartbeat import HeartbeatObserver

        found.append(HeartbeatObserver(url, heartbeat.style, heartbeat.timeout_s, emit))
    prometheus = settings.prometheus
    if prometheus.configured:
        from opsctl.adapters.observers.prometheus import PrometheusObserver

        found.append(PrometheusObserver(
            textfile_dir=prometheus.textfile_dir, pushgateway_url=prometheus.pushgateway_url,
            timeout_s=prometheus.timeout_s, host=host, last_success=last_success, emit=emit))
    return found
