"""``logs.stats`` with an in-memory source: the cutoff it asks for and the summary it gives."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import logs_stats
from opsctl.jobs.context import JobContext
from opsctl.jobs.logs_stats import LogStatsParams
from opsctl.ports import LogTableStats
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)


class FakeSource:
    def __init__(self, stats: LogTableStats) -> None:
        self.result = stats
        self.cutoffs: list[datetime] = []

    def stats(self, cutoff: datetime) -> LogTableStats:
        self.cutoffs.append(cutoff)
        return self.result


def ctx() -> JobContext:
    runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={}, clock=lambda: NOW)
    return JobContext("logs.stats", runtime, Emitter(runtime, "logs.stats"), dry_run=True)


def test_summary_fields_and_cutoff() -> None:
    source = FakeSource(LogTableStats(
        total_rows=1200, eligible=450,
        oldest_created_at=datetime(2026, 9, 1, 8, 30, 0, 250000, tzinfo=UTC),
        newest_created_at=datetime(2026, 11, 23, 9, 59, 59, tzinfo=UTC)))

    result = logs_stats.run(ctx(), source, LogStatsParams(retention_days=7))

    assert source.cutoffs == [datetime(2026, 11, 16, 10, 0, 0, 123456, tzinfo=UTC)]
    assert (result.summary_type, result.state, result.exit_code) == (
        "export_log_cleanup_stats", "ok", ExitCode.OK)
    assert result.fields == {
        "retention_days": 7,
        "cutoff": "2026-11-16T10:00:00.123Z",
        "total_rows": 1200,
        "eligible_for_cleanup": 450,
        "oldest_created_at": "2026-09-01T08:30:00.250Z",
        "newest_created_at": "2026-11-23T09:59:59.000Z",
        "quarantined_count": 0,
    }
    assert result.message == "450 of 1,200 log rows are older than 7 days"


def test_an_empty_table_has_no_oldest_or_newest() -> None:
    source = FakeSource(LogTableStats(0, 0, None, None))

    result = logs_stats.run(ctx(), source, LogStatsParams(retention_days=30))

    assert result.fields["oldest_created_at"] is None
    assert result.fields["newest_created_at"] is None
    assert result.fields["total_rows"] == 0


def test_negative_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="retention_days"):
        LogStatsParams(retention_days=-1)
