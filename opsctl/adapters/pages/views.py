"""What a page shows, as plain data: built from a report's summary fields, or by hand.

The pages read the same fields the JSON summary carries (``status_report``,
``metrics_report``), so a page never shows a number the event does not. Timestamps may
arrive as ``datetime`` (straight from the job) or as RFC 3339 text (from a stored or
re-read event); both become aware UTC datetimes here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def instant(value: object) -> datetime | None:
    """An aware UTC datetime from a datetime or ISO 8601 text; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


@dataclass(frozen=True)
class JobLine:
    job: str
    last_run_at: datetime | None = None
    last_state: str | None = None
    last_exit_code: int | None = None
    last_success_at: datetime | None = None
    overdue: bool = False
    running: bool = False
    scheduled: bool = True


@dataclass(frozen=True)
class AlertLine:
    name: str
    opened_at: datetime | None = None
    severity: str = "critical"


@dataclass(frozen=True)
class FailedRunLine:
    job: str
    started_at: datetime
    exit_code: int
    state: str = "failed"
    error_kind: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class StatusView:
    """Everything the status page shows."""

    generated_at: datetime
    host: str
    state: str  # ok | warning | critical
    message: str
    jobs: Sequence[JobLine] = ()
    open_alerts: Sequence[AlertLine] = ()
    failure_rate: float | None = None
    completed: int = 0
    failed: int = 0
    failure_window: str = "1h"
    pending_log_rows: int = 0
    pending_files: int = 0
    failed_runs: Sequence[FailedRunLine] = ()
    findings: Sequence[str] = ()
    threshold: float | None = None  # [failure_rate] threshold and warning, for the meter
    warning: float | None = None

    @property
    def empty(self) -> bool:
        """Nothing recorded and nothing to count: a fresh database."""
        return (not any(j.last_run_at for j in self.jobs) and not self.failed_runs
                and not self.open_alerts and self.completed + self.failed == 0
                and self.pending_log_rows == 0 and self.pending_files == 0)

    @classmethod
    def from_summary(
        cls, fields: Mapping[str, Any], *, state: str, message: str, generated_at: datetime,
        host: str, failed_runs: Iterable[Mapping[str, Any]] = (),
        threshold: float | None = None, warning: float | None = None,
    ) -> StatusView:
        return cls(
            generated_at=generated_at, host=host, state=state, message=message,
            jobs=[JobLine(
                job=str(row["job"]), last_run_at=instant(row.get("last_run_at")),
                last_state=row.get("last_state"), last_exit_code=_int(row.get("last_exit_code")),
                last_success_at=instant(row.get("last_success_at")),
                overdue=bool(row.get("overdue")), running=bool(row.get("running")),
                scheduled=bool(row.get("cron", True)),
            ) for row in fields.get("jobs", ())],
            open_alerts=[AlertLine(
                name=str(a["name"]) if isinstance(a, Mapping) else str(a),
                opened_at=instant(a.get("opened_at")) if isinstance(a, Mapping) else None,
                severity=str(a.get("severity") or "critical") if isinstance(a, Mapping)
                else "critical",
            ) for a in fields.get("open_alerts", ())],
            failure_rate=_float(fields.get("failure_rate")),
            completed=int(fields.get("completed") or 0),
            failed=int(fields.get("failed") or 0),
            failure_window=str(fields.get("failure_window") or "1h"),
            pending_log_rows=int(fields.get("pending_log_rows") or 0),
            pending_files=int(fields.get("pending_files") or 0),
            failed_runs=[FailedRunLine(
                job=str(r["job"]), started_at=instant(r["started_at"]) or generated_at,
                exit_code=int(r["exit_code"]), state=str(r.get("state") or "failed"),
                error_kind=r.get("error_kind"), error_message=r.get("error_message"),
            ) for r in failed_runs],
            findings=[str(f) for f in fields.get("findings", ())],
            threshold=threshold, warning=warning,
        )


@dataclass(frozen=True)
class PeriodPoint:
    window_start: datetime
    total: int
    completed: int
    failed: int
    failure_rate: float | None
    p95_duration_ms: float | None


@dataclass(frozen=True)
class ReportView:
    """Everything the metrics report page shows: one point per period."""

    generated_at: datetime
    host: str
    period: str  # hourly | daily
    window_start: datetime
    window_end: datetime
    series: Sequence[PeriodPoint] = field(default_factory=list)
    failure_rate_threshold: float = 0.10

    @property
    def total(self) -> int:
        return sum(p.total for p in self.series)

    @property
    def failed(self) -> int:
        return sum(p.failed for p in self.series)

    @property
    def finished(self) -> int:
        return sum(p.completed + p.failed for p in self.series)

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def empty(self) -> bool:
        return self.total == 0

    @property
    def busiest(self) -> PeriodPoint | None:
        return max(self.series, key=lambda p: p.total, default=None)

    @property
    def above_threshold(self) -> list[PeriodPoint]:
        return [p for p in self.series
                if p.failure_rate is not None and p.failure_rate > self.failure_rate_threshold]

    @property
    def slowest(self) -> PeriodPoint | None:
        timed = [p for p in self.series if p.p95_duration_ms is not None]
        return max(timed, key=lambda p: p.p95_duration_ms or 0.0, default=None)

    @classmethod
    def from_summary(
        cls, fields: Mapping[str, Any], *, generated_at: datetime, host: str,
        failure_rate_threshold: float | None = None,
    ) -> ReportView:
        series = [PeriodPoint(
            window_start=instant(p["window_start"]) or generated_at, total=int(p["total"]),
            completed=int(p["completed"]), failed=int(p["failed"]),
            failure_rate=_float(p.get("failure_rate")),
            p95_duration_ms=_float(p.get("p95_duration_ms")),
        ) for p in fields.get("series", ())]
        threshold = failure_rate_threshold
        if threshold is None:
            threshold = _float(fields.get("failure_rate_threshold"))
        start = instant(fields.get("window_start"))
        end = instant(fields.get("window_end"))
        return cls(
            generated_at=generated_at, host=host, period=str(fields.get("period", "hourly")),
            window_start=start or (series[0].window_start if series else generated_at),
            window_end=end or generated_at, series=series,
            failure_rate_threshold=0.10 if threshold is None else threshold,
        )
