"""``runs list``: opsctl's latest recorded runs, newest first.

A report, not a scheduled job: it is never recorded in run history itself. Each run is one
``job_run`` event whose common ``job`` field is the listed run's job, so a log pipeline
facets it like the run's own events; the listed run's id is ``job_run_id`` because the
common ``run_id`` belongs to this invocation. Only the closing ``job_runs_listed`` line
carries ``state`` and ``exit_code`` of the invocation; a listed run's outcome is ``state``
and ``job_exit_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opsctl.domain.durations import format_duration
from opsctl.domain.job_names import JOB_NAMES
from opsctl.domain.units import human_ms
from opsctl.errors import UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import RunHistory, RunRecord

SUMMARY_TYPE = "job_runs_listed"
SUMMARY_WIDTH = 120
# Bookkeeping fields every stored summary has; the one-line summary is about the rest.
_OMITTED = frozenset({"state", "exit_code", "dry_run"})


@dataclass(frozen=True)
class ListParams:
    job: str | None = None
    limit: int = 20
    since: timedelta | None = None


def check_job_name(name: str) -> str:
    """The contract's job names are the only ones history holds; a typo would list nothing."""
    if name not in JOB_NAMES:
        raise UsageError(f"unknown job {name!r}; expected one of: {', '.join(JOB_NAMES)}")
    return name


def run(ctx: JobContext, history: RunHistory, params: ListParams) -> JobResult:
    if params.job is not None:
        check_job_name(params.job)
    if params.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {params.limit}")
    since = ctx.now() - params.since if params.since is not None else None
    records = history.recent_runs(job=params.job, since=since, limit=params.limit)
    rows = []
    emitters: dict[str, Emitter] = {}
    for record in records:
        row = run_fields(record)
        if record.job not in emitters:
            emitters[record.job] = ctx.emitter.for_job(record.job)
        # Info even for a failed run: listing an old failure is not a new event to alert on.
        emitters[record.job].emit("job_run", _message(record), **row)
        # ``details`` (the stored summary) is for the text view only, never an event field.
        rows.append({"job": record.job, **row, "details": record.summary})
    scope = f" of {params.job}" if params.job else ""
    window = f" in the last {format_duration(params.since)}" if params.since else ""
    return JobResult(
        SUMMARY_TYPE,
        f"{len(rows)} recorded run{'s' if len(rows) != 1 else ''}{scope}{window}",
        "ok",
        ExitCode.OK,
        {"count": len(rows), "limit": params.limit, "job_filter": params.job, "since": since},
        extra={"runs": rows},
    )


def run_fields(record: RunRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "job_run_id": record.run_id,
        "job_host": record.host,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration_ms": record.duration_ms,
        "state": record.state,
        "job_exit_code": record.exit_code,
        "summary": one_line(record),
    }
    if record.error:
        fields["error"] = record.error
    return fields


def one_line(record: RunRecord) -> str:
    """The stored summary as one short line: the error if the run failed, else its numbers.

    Nested values (per-format breakdowns, error type lists) are left out: they do not fit
    one line and ``runs list`` is for spotting the run to look at, not for reading it.
    """
    if record.error:
        text = f"{record.error.get('kind', 'error')}: {record.error.get('message', '')}"
    else:
        parts = [
            f"{key}={_scalar(value)}"
            for key, value in record.summary.items()
            if key not in _OMITTED and value is not None and not isinstance(value, dict | list)
        ]
        text = ", ".join(parts)
    text = " ".join(text.split())  # messages may hold newlines (driver errors do)
    if len(text) > SUMMARY_WIDTH:
        text = text[: SUMMARY_WIDTH - 1] + "…"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _message(record: RunRecord) -> str:
    return (f"{record.job} {record.state} (exit {record.exit_code}) in "
            f"{human_ms(record.duration_ms)}, started {record.started_at:%Y-%m-%d %H:%M:%S}Z")
