"""The names of the jobs opsctl runs: what events, locks, run history, heartbeats and
freshness checks call them. One list, so a new job is known everywhere at once."""

from __future__ import annotations

from typing import Literal, get_args

JobName = Literal[
    "metrics.aggregate", "failure-rate.check", "files.cleanup", "logs.cleanup", "health.probe",
    "logs.restore", "files.audit",
]
JOB_NAMES: tuple[str, ...] = get_args(JobName)
