"""Prometheus metrics of every run: a textfile for node_exporter, a push to a Pushgateway.

cron jobs cannot be scraped (they are gone before the scrape), so the two ways Prometheus
users watch batch jobs are both offered: a file per job in node_exporter's textfile
directory (written atomically, so a scrape never reads half of it) and a push to a
Pushgateway under the grouping key ``job="opsctl", instance=<host>, opsctl_job=<job>``.
Every series carries ``opsctl_job`` (``job`` belongs to Prometheus's own target labels).

``opsctl_job_last_success_timestamp_seconds`` comes from run history, so a failing run
keeps showing when the job last worked, which is what an alert on a stuck job needs.

A write or push that fails is a warning event (``prometheus_export_failed``), never a
change of exit code. This module is imported only when ``[prometheus]`` is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from opsctl.ports import RunEnd, RunStart

LastSuccess = Callable[[str], datetime | None]
Emit = Callable[..., None]

QUANTILES = {"0.5": "p50_duration_ms", "0.95": "p95_duration_ms", "0.99": "p99_duration_ms"}
# The summary fields of each job that become a metric, by metric name.
_FILES = {"opsctl_files_deleted": "deleted_count", "opsctl_files_missing": "missing_count",
          "opsctl_files_failed": "failed_count", "opsctl_files_bytes_freed": "bytes_freed"}
_LOGS = {"opsctl_log_rows_deleted": "deleted_count",
         "opsctl_log_rows_archived": "archived_count"}
_HELP = {
    "opsctl_job_last_run_timestamp_seconds": "When the job's last run ended (Unix time).",
    "opsctl_job_last_success_timestamp_seconds":
        "When the job last ended with exit 0, 1 or 2 (Unix time), from run history.",
    "opsctl_job_duration_seconds": "How long the job's last run took.",
    "opsctl_job_exit_code": "The exit code of the job's last run.",
    "opsctl_exports": "Exports in the job's window, by status (total, completed, failed).",
    "opsctl_export_failure_ratio": "failed / (completed + failed) over the job's window.",
    "opsctl_export_duration_seconds": "Export duration quantiles over the job's window.",
    "opsctl_failure_rate_alert": "1 while the export failure-rate alert is open, else 0.",
    "opsctl_files_deleted": "Export files deleted by the last files cleanup.",
    "opsctl_files_missing": "Export files already gone at the last files cleanup.",
    "opsctl_files_failed": "Export files the last files cleanup failed to delete.",
    "opsctl_files_bytes_freed": "Bytes freed by the last files cleanup.",
    "opsctl_log_rows_deleted": "Log rows deleted by the last logs cleanup.",
    "opsctl_log_rows_archived": "Log rows archived by the last logs cleanup.",
    "opsctl_health_check_up": "1 when the health check was ok at the last probe, else 0.",
    "opsctl_health_check_latency_seconds": "How long the health check took at the last probe.",
}


def textfile_name(job: str) -> str:
    """``files.cleanup`` → ``opsctl_files_cleanup.prom``."""
    return "opsctl_" + job.replace(".", "_").replace("-", "_") + ".prom"


def registry_for(run: RunEnd, last_success: datetime | None) -> CollectorRegistry:
    """Every metric of one run, in a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    gauges: dict[str, Gauge] = {}

    def put(name: str, value: Any, **labels: str) -> None:
        if value is None or isinstance(value, str):
            return  # nothing measured: no sample rather than a made-up zero
        if name not in gauges:
            gauges[name] = Gauge(name, _HELP[name], ["opsctl_job", *labels],
                                 registry=registry)
        gauges[name].labels(opsctl_job=run.job, **labels).set(float(value))

    put("opsctl_job_last_run_timestamp_seconds", run.finished_at.timestamp())
    if last_success is not None:
        put("opsctl_job_last_success_timestamp_seconds", last_success.timestamp())
    put("opsctl_job_duration_seconds", run.duration_s)
    put("opsctl_job_exit_code", run.exit_code)
    _job_metrics(run, run.event, put, registry)
    return registry


class _Quantiles(Collector):
    """Export duration quantiles computed by the database: a summary of quantile samples
    only (a Gauge with a ``quantile`` label is what promtool rejects)."""

    NAME = "opsctl_export_duration_seconds"

    def __init__(self, job: str, quantiles: dict[str, float]) -> None:
        self.job, self.quantiles = job, quantiles

    def collect(self) -> Iterable[Metric]:
        metric = Metric(self.NAME, _HELP[self.NAME], "summary")
        for quantile, value in self.quantiles.items():
            metric.add_sample(self.NAME, {"opsctl_job": self.job, "quantile": quantile}, value)
        yield metric


def _job_metrics(run: RunEnd, f: Mapping[str, Any], put: Callable[..., None],
                 registry: CollectorRegistry) -> None:
    if run.job in ("metrics.aggregate", "failure-rate.check"):
        total = f.get("total_exports", f.get("total"))
        for status, value in (("total", total), ("completed", f.get("completed")),
                              ("failed", f.get("failed"))):
            put("opsctl_exports", value, status=status)
        put("opsctl_export_failure_ratio", f.get("failure_rate"))
        quantiles = {q: f[key] / 1000 for q, key in QUANTILES.items()
                     if isinstance(f.get(key), int | float)}
        if quantiles:
            registry.register(_Quantiles(run.job, quantiles))
        if run.job == "failure-rate.check" and "alert_open" in f:
            put("opsctl_failure_rate_alert", int(bool(f["alert_open"])))
    elif run.job == "files.cleanup":
        for name, key in _FILES.items():
            put(name, f.get(key))
    elif run.job == "logs.cleanup":
        for name, key in _LOGS.items():
            put(name, f.get(key))
    elif run.job == "health.probe":
        for check in run.details.get("checks") or []:
            put("opsctl_health_check_up", int(check["state"] == "ok"), check=check["check"])
            put("opsctl_health_check_latency_seconds", check["latency_ms"] / 1000,
                check=check["check"])


class PrometheusObserver:
    """The ``RunObserver`` that exports each run's metrics."""

    def __init__(self, *, textfile_dir: Path | None, pushgateway_url: str | None,
                 timeout_s: float, host: str, last_success: LastSuccess, emit: Emit) -> None:
        self.textfile_dir, self.pushgateway_url = textfile_dir, pushgateway_url
        self.timeout_s, self.host = timeout_s, host
        self._last_success = last_success
        self._emit = emit

    def run_started(self, run: RunStart) -> None:
        pass  # a run that never ends is what last_run/last_success already show

    def run_ended(self, run: RunEnd) -> None:
        registry = registry_for(run, self._success_time(run))
        if self.textfile_dir is not None:
            path = self.textfile_dir / textfile_name(run.job)
            try:
                # write_to_textfile writes a temporary file beside it, then renames it.
                write_to_textfile(str(path), registry)
            except OSError as exc:
                self._failed("textfile", "write_failed",
                             f"cannot write {path}: {exc.strerror or exc}")
        if self.pushgateway_url is not None:
            gateway, handler = _with_credentials(self.pushgateway_url)
            try:
                push_to_gateway(gateway, job="opsctl", registry=registry,
                                grouping_key={"instance": self.host, "opsctl_job": run.job},
                                timeout=self.timeout_s, handler=handler)
            except Exception as exc:  # urllib raises URLError, HTTPError, timeouts, ...
                self._failed("pushgateway", "push_failed", _push_error(exc))

    def _success_time(self, run: RunEnd) -> datetime | None:
        if run.succeeded:
            return run.finished_at
        if run.database_down:
            return None  # asking again would only add another connect timeout
        try:
            return self._last_success(run.job)
        except Exception as exc:
            self._failed("history", "history_unavailable",
                         f"last success not read from run history: {exc}")
            return None

    def _failed(self, target: str, kind: str, message: str) -> None:
        self._emit("prometheus_export_failed", f"prometheus {target}: {message}",
                   level="warning", target=target, error={"kind": kind, "message": message})


def _push_error(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    code = getattr(exc, "code", None)
    if code is not None:
        return f"Pushgateway answered HTTP {code}"
    return f"push failed: {reason or exc}"


def _with_credentials(url: str) -> tuple[str, Callable[..., Callable[[], None]]]:
    """The URL without its ``user:password@`` and a handler sending them as basic auth.

    prometheus_client's default handler hands ``user:password@host`` to the resolver as a
    host name, so the password would leave the machine in a DNS query and the push fail.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, default_handler
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    username, password = unquote(parts.username or ""), unquote(parts.password or "")

    def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                data: bytes) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)

    return bare, handler
