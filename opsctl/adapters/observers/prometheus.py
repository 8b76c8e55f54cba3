"""Prometheus metrics of every run: a textfile for node_exporter, a push to a Pushgateway.

cron jobs cannot be scraped (they are gone before the scrape), so the two ways Prometheus
users watch batch jobs are both offered: a file per job in node_exporter's textfile
directory (written atomically, so a scrape never reads half of it) and a push to a
Pushgateway under the grouping key ``job="opsctl", instance=<host>, opsctl_job=<job>``.
Every series carries ``opsctl_job`` (``job`` belongs to Prometheus's own target labels).

``opsctl_job_last_success_timestamp_seconds`` comes from run history, so a failing run
keeps showing when the job last worked, which is what an alert on a stuck job needs.

A write or push that fails is a warning event (``prometheus_export_failed``), never a
change of exit code. This module is imported only when ``[prometheus]`` is configured;
the text it writes and pushes comes from :mod:`exposition`, without a client library.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote, urlsplit, urlunsplit

from opsctl.adapters.observers.exposition import CONTENT_TYPE, Family, render
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


def metrics_for(run: RunEnd, last_success: datetime | None) -> list[Family]:
    """Every metric of one run, in the order they are written."""
    families: dict[str, Family] = {}

    def put(name: str, value: Any, **labels: str) -> None:
        if value is None or isinstance(value, str):
            return  # nothing measured: no sample rather than a made-up zero
        family = families.setdefault(name, Family(name, "gauge", _HELP[name]))
        family.samples.append(({"opsctl_job": run.job, **labels}, float(value)))

    put("opsctl_job_last_run_timestamp_seconds", run.finished_at.timestamp())
    if last_success is not None:
        put("opsctl_job_last_success_timestamp_seconds", last_success.timestamp())
    put("opsctl_job_duration_seconds", run.duration_s)
    put("opsctl_job_exit_code", run.exit_code)
    _job_metrics(run, run.event, put, families)
    return list(families.values())


def _quantiles(job: str, quantiles: dict[str, float]) -> Family:
    """Export duration quantiles computed by the database: a summary of quantile samples
    only (a gauge with a ``quantile`` label is what promtool rejects)."""
    name = "opsctl_export_duration_seconds"
    return Family(name, "summary", _HELP[name],
                  [({"opsctl_job": job, "quantile": q}, value) for q, value in quantiles.items()])


def _job_metrics(run: RunEnd, f: Mapping[str, Any], put: Callable[..., None],
                 families: dict[str, Family]) -> None:
    if run.job in ("metrics.aggregate", "failure-rate.check"):
        total = f.get("total_exports", f.get("total"))
        for status, value in (("total", total), ("completed", f.get("completed")),
                              ("failed", f.get("failed"))):
            put("opsctl_exports", value, status=status)
        put("opsctl_export_failure_ratio", f.get("failure_rate"))
        quantiles = {q: f[key] / 1000 for q, key in QUANTILES.items()
                     if isinstance(f.get(key), int | float)}
        if quantiles:
            family = _quantiles(run.job, quantiles)
            families[family.name] = family
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
        text = render(metrics_for(run, self._success_time(run))).encode()
        if self.textfile_dir is not None:
            path = self.textfile_dir / textfile_name(run.job)
            try:
                write_textfile(path, text)
            except OSError as exc:
                self._failed("textfile", "write_failed",
                             f"cannot write {path}: {exc.strerror or exc}")
        if self.pushgateway_url is not None:
            try:
                push(self.pushgateway_url, {"instance": self.host, "opsctl_job": run.job},
                     text, self.timeout_s)
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


def write_textfile(path: Path, text: bytes) -> None:
    """Write beside the file, then rename over it: a scrape reads the old file or the
    new one, never half of one (node_exporter reads only names ending in ``.prom``)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(text)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def push(url: str, grouping_key: Mapping[str, str], text: bytes, timeout_s: float) -> None:
    """PUT the run's metrics under ``/metrics/job/opsctl/<key>/<value>...``, replacing what
    an earlier run of the same job pushed there (a metric this run did not measure must
    not linger). An answer other than 2xx raises ``HTTPError``."""
    gateway, headers = _with_credentials(url if "://" in url else f"http://{url}")
    path = "/metrics/job/opsctl" + "".join(
        "/{}/{}".format(*_grouping_pair(key, grouping_key[key])) for key in sorted(grouping_key))
    import urllib.request  # the push only: a textfile-only run needs no HTTP client

    # _with_credentials let only http and https through.
    request = urllib.request.Request(gateway.rstrip("/") + path, data=text,  # noqa: S310
                                     method="PUT",
                                     headers={"Content-Type": CONTENT_TYPE, **headers})
    with urllib.request.urlopen(request, timeout=timeout_s):  # noqa: S310
        pass


def _grouping_pair(key: str, value: str) -> tuple[str, str]:
    """A grouping-key label in a URL path, as the Pushgateway decodes it: base64 for a
    value with ``/`` or a space (or an empty one), else URL-quoted."""
    if value == "":
        return f"{key}@base64", "="
    if "/" in value or " " in value:
        return f"{key}@base64", base64.urlsafe_b64encode(value.encode()).decode()
    return key, quote_plus(value)


def _with_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its ``user:password@`` and the basic-auth header sending them.

    Left in the URL, ``user:password@host`` would reach the resolver as a host name, so
    the password would leave the machine in a DNS query and the push fail.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
    if parts.username is None and parts.password is None:
        return url, {}
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return bare, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
