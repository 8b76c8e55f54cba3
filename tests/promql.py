"""What a PromQL expression reads, and the metrics and labels opsctl writes.

The deployment files we ship (alerting rules, the Grafana dashboard) may only read what
opsctl exports; these helpers let their tests say so without a PromQL parser of our own
beyond selectors and grouping clauses (promtool checks the syntax).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conftest import unavailable

# The metrics and labels of the contract's [prometheus] section.
EXPORTED_METRICS = frozenset({
    "opsctl_job_last_run_timestamp_seconds", "opsctl_job_last_success_timestamp_seconds",
    "opsctl_job_duration_seconds", "opsctl_job_exit_code", "opsctl_exports",
    "opsctl_export_failure_ratio", "opsctl_export_duration_seconds",
    "opsctl_failure_rate_alert", "opsctl_files_deleted", "opsctl_files_missing",
    "opsctl_files_failed", "opsctl_files_bytes_freed", "opsctl_log_rows_deleted",
    "opsctl_log_rows_archived", "opsctl_health_check_up",
    "opsctl_health_check_latency_seconds",
})
EXPORTED_LABELS = frozenset({"opsctl_job", "status", "quantile", "check"})

FUNCTIONS = frozenset({
    "time", "max", "min", "sum", "avg", "count", "topk", "bottomk", "abs", "clamp_min",
    "clamp_max", "rate", "increase", "delta", "max_over_time", "min_over_time", "changes",
    "absent", "vector", "scalar", "timestamp", "label_replace", "sort", "sort_desc",
})
KEYWORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring",
                      "group_left", "group_right", "bool", "offset"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def read_by(expr: str) -> tuple[set[str], set[str], set[str]]:
    """(metric names, label names, function names) an expression uses."""
    labels: set[str] = set()
    body = _STRING.sub('""', expr)
    for inner in _MATCHERS.findall(body):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", inner))
    body = _MATCHERS.sub(" ", body)
    for inner in _GROUPING.findall(body):
        labels.update(name.strip() for name in inner.split(",") if name.strip())
    body = _GROUPING.sub(" ", body)
    metrics: set[str] = set()
    functions: set[str] = set()
    for name, call in _IDENT.findall(body):
        if name in KEYWORDS:
            continue
        (functions if call else metrics).add(name)
    return metrics, labels, functions


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        unavailable("promtool is not installed (Debian package prometheus)")
        raise AssertionError("unreachable")
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
