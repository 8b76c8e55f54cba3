"""demo seed's generator and job, on in-memory fakes of its two ports."""

from __future__ import annotations

import io
import json
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from opsctl.domain.paths import safe_key
from opsctl.errors import UsageError
from opsctl.events import Emitter
from opsctl.exit_codes import ExitCode
from opsctl.jobs import demo_seed
from opsctl.jobs.context import JobContext
from opsctl.jobs.demo_seed import SeedParams, SeedPorts, document, generate
from opsctl.ports import ExportRow
from opsctl.runtime import Runtime

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ERROR_TYPES = {"timeout", "storage_error", "serialization_error", "rate_limited",
               "permission_denied"}


@dataclass
class FakeSink:
    removed: int
    on_write: object = None
    rows: list[ExportRow] = field(default_factory=list)

    def write(self, rows: Sequence[ExportRow]) -> None:
        self.rows.extend(rows)
        if callable(self.on_write):
            self.on_write()


@dataclass
class FakeSeeder:
    existing: int | None = None
    committed: list[ExportRow] = field(default_factory=list)
    truncate: bool | None = None
    on_write: object = None

    def row_count(self) -> int | None:
        return self.existing

    @contextmanager
    def seeding(self, *, truncate: bool) -> Iterator[FakeSink]:
        self.truncate = truncate
        sink = FakeSink((self.existing or 0) if truncate else 0, self.on_write)
        yield sink
        self.committed.extend(sink.rows)  # only on a clean exit, like a transaction


@dataclass
class FakeFiles:
    files: dict[str, bytes] = field(default_factory=dict)
    location: str = "/srv/exports"

    def write(self, key: str, data: bytes) -> None:
        self.files[key] = data


def context(dry_run: bool = False) -> JobContext:
    runtime = Runtime(stdout=io.StringIO(), stderr=io.StringIO(), env={}, clock=lambda: NOW)
    return JobContext(demo_seed.JOB, runtime, Emitter(runtime, demo_seed.JOB), dry_run=dry_run)


# --- the generator ------------------------------------------------------------------------


def test_same_seed_and_clock_give_identical_rows_and_another_seed_does_not() -> None:
    first = list(generate(7, 2_000, 45, NOW))
    assert first == list(generate(7, 2_000, 45, NOW))
    other = list(generate(8, 2_000, 45, NOW))
    assert not {e.row.export_id for e in first} & {e.row.export_id for e in other}


def test_a_later_clock_keeps_ids_users_formats_and_sizes_of_the_same_seed() -> None:
    def stable(now: datetime) -> list[tuple[object, ...]]:
        return [(e.row.export_id, e.row.user_id, e.row.format, e.row.conversation_count)
                for e in generate(3, 1_000, 45, now)]

    assert stable(NOW) == stable(NOW + timedelta(days=1, minutes=17))


@pytest.fixture(scope="module")
def sample() -> list[demo_seed.DemoExport]:
    return list(generate(2026, 5_000, 45, NOW))


def test_shares_over_5000_rows(sample: list[demo_seed.DemoExport]) -> None:
    statuses = Counter(e.row.status for e in sample)
    assert 0.05 <= statuses["failed"] / len(sample) <= 0.15
    assert set(statuses) <= set(demo_seed.STATUSES)
    assert statuses["expired"] > 0 and statuses["completed"] > 0
    assert {e.row.format for e in sample} == {"json", "jsonl", "csv", "markdown"}
    assert sum(e.row.created_at < NOW - timedelta(days=30) for e in sample) > 1_000
    assert len({e.row.export_id for e in sample}) == 5_000


def test_rows_ascend_in_time_inside_the_requested_days(
    sample: list[demo_seed.DemoExport],
) -> None:
    times = [e.row.created_at for e in sample]
    assert times == sorted(times)
    assert NOW - timedelta(days=45) <= times[0] and times[-1] < NOW


def test_failed_rows_carry_an_error_and_no_file(sample: list[demo_seed.DemoExport]) -> None:
    for export in sample:
        row = export.row
        if row.status == "failed":
            assert row.error_type in ERROR_TYPES and row.error_message
            assert (row.file_path, row.file_size_bytes, row.expires_at) == (None, None, None)
            assert not export.has_file
        else:
            assert (row.error_type, row.error_message) == (None, None)
    failed_types = {e.row.error_type for e in sample if e.row.status == "failed"}
    assert failed_types == ERROR_TYPES


def test_file_rows_expire_after_seven_days_under_a_dated_safe_key(
    sample: list[demo_seed.DemoExport],
) -> None:
    extension = {"json": "json", "jsonl": "jsonl", "csv": "csv", "markdown": "md"}
    for export in sample:
        row = export.row
        if row.status in ("completed", "expired"):
            assert row.expires_at == row.created_at + timedelta(days=7)
            assert row.file_path == (f"{row.created_at:%Y/%m/%d}/{row.export_id}."
                                     f"{extension[row.format]}")
            assert str(safe_key(row.file_path)) == row.file_path
            assert 1_000 <= (row.file_size_bytes or 0) <= 200_000


def test_files_exist_exactly_for_completed_rows_minus_a_few_already_gone(
    sample: list[demo_seed.DemoExport],
) -> None:
    for export in sample:
        row = export.row
        if row.status != "completed":
            assert not export.has_file
        elif row.expires_at and row.expires_at > NOW:
            assert export.has_file  # not expired yet: the file must be there
    expired_files = [e for e in sample if e.has_file and e.row.expires_at
                     and e.row.expires_at <= NOW]
    gone = [e for e in sample if e.row.status == "completed" and not e.has_file]
    # Work for files cleanup: expired files still on disk, and a few already missing.
    assert len(expired_files) > 100
    assert 0 < len(gone) < len(expired_files) / 10
    # Rows marked expired lost their file more than the two-day backlog ago.
    assert all(e.row.expires_at and e.row.expires_at < NOW - timedelta(days=2)
               for e in sample if e.row.status == "expired")


def test_durations_are_log_normal_around_one_and_a_half_seconds(
    sample: list[demo_seed.DemoExport],
) -> None:
    durations = sorted(e.row.duration_ms or 0 for e in sample
                       if e.row.status in ("completed", "expired"))
    median = statistics.median(durations)
    assert 1_200 <= median <= 1_900
    assert durations[int(len(durations) * 0.99)] > 4 * median  # a long tail
    assert durations[0] >= 50


def test_file_sizes_grow_with_conversation_count(sample: list[demo_seed.DemoExport]) -> None:
    sized = [e.row for e in sample if e.row.file_size_bytes]
    small = statistics.mean(r.file_size_bytes or 0 for r in sized if r.conversation_count <= 5)
    large = statistics.mean(r.file_size_bytes or 0 for r in sized if r.conversation_count >= 30)
    assert large > 4 * small


def test_in_flight_rows_are_recent_only() -> None:
    rows = [e.row for e in generate(5, 5_000, 1, NOW)]  # ~200 an hour: the last hour is full
    statuses = Counter(r.status for r in rows)
    assert statuses["queued"] > 0 and statuses["processing"] > 0
    for row in rows:
        if row.status in ("queued", "processing"):
            assert NOW - row.created_at < timedelta(hours=1)
            assert (row.duration_ms, row.file_path, row.expires_at) == (None, None, None)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "markdown"])
def test_documents_have_exactly_the_rows_size(fmt: str) -> None:
    row = next(e.row for e in generate(1, 500, 45, NOW)
               if e.row.format == fmt and e.row.file_size_bytes)
    data = document(row)
    assert len(data) == row.file_size_bytes
    if fmt in ("json", "jsonl"):
        assert json.loads(data)["export_id"] == row.export_id
    else:
        assert row.export_id.encode() in data[:200]


# --- the job ------------------------------------------------------------------------------


def test_run_writes_every_row_and_the_files_of_the_rows_that_keep_one() -> None:
    seeder, files = FakeSeeder(), FakeFiles()
    params = SeedParams(rows=3_000, days=45, seed=11, chunk_size=700)
    result = demo_seed.run(context(), SeedPorts(seeder, files), params)

    expected = list(generate(11, 3_000, 45, NOW))
    assert seeder.committed == [e.row for e in expected]
    assert seeder.truncate is False
    with_file = {e.row.file_path: e.row for e in expected if e.has_file}
    assert set(files.files) == set(with_file)
    assert all(len(data) == with_file[key].file_size_bytes for key, data in files.files.items())

    statuses = Counter(e.row.status for e in expected)
    assert (result.summary_type, result.state, result.exit_code) == ("demo_seeded", "ok",
                                                                     ExitCode.OK)
    assert result.summary() == {
        "dry_run": False, "table": "export_logs", "table_created": True, "truncated": False,
        "rows_removed": 0, "rows": 3_000,
        "by_status": {s: statuses[s] for s in demo_seed.STATUSES},
        "by_format": dict(Counter(e.row.format for e in expected)),
        "files_written": len(with_file), "storage_root": "/srv/exports", "seed": 11,
        "days": 45, "oldest_created_at": _stamp(expected[0].row.created_at),
        "newest_created_at": _stamp(expected[-1].row.created_at), "duration_ms": 0,
        "state": "ok", "exit_code": 0,
    }
    assert list(result.fields["by_format"]) == ["json", "jsonl", "csv", "markdown"]
    assert "status" not in result.summary()


def test_dry_run_writes_nothing_and_reports_what_it_would_do() -> None:
    seeder, files = FakeSeeder(existing=120), FakeFiles()
    params = SeedParams(rows=1_000, seed=4, truncate=True)
    result = demo_seed.run(context(dry_run=True), SeedPorts(seeder, files), params)
    assert (seeder.committed, seeder.truncate, files.files) == ([], None, {})
    expected = list(generate(4, 1_000, 45, NOW))
    assert result.fields["dry_run"] is True
    assert result.fields["rows"] == 1_000
    assert result.fields["rows_removed"] == 120
    assert result.fields["table_created"] is False
    assert result.fields["files_written"] == sum(e.has_file for e in expected)
    assert result.message.startswith("would seed 1,000 exports")


def test_truncate_reports_the_rows_removed_and_no_files_writes_rows_only() -> None:
    seeder = FakeSeeder(existing=42)
    result = demo_seed.run(context(), SeedPorts(seeder, None),
                           SeedParams(rows=10, seed=1, truncate=True))
    assert seeder.truncate is True
    assert len(seeder.committed) == 10
    assert (result.fields["rows_removed"], result.fields["table_created"]) == (42, False)
    assert (result.fields["files_written"], result.fields["storage_root"]) == (0, None)


def test_a_stop_request_keeps_the_chunks_written_and_ends_interrupted() -> None:
    ctx = context()
    ctx.runtime.stop.cooperative = True
    seeder = FakeSeeder(on_write=lambda: ctx.runtime.stop.request(ExitCode.SIGTERM))
    files = FakeFiles()
    result = demo_seed.run(ctx, SeedPorts(seeder, files),
                           SeedParams(rows=2_000, seed=9, chunk_size=500))
    first_chunk = list(generate(9, 2_000, 45, NOW))[:500]
    assert seeder.committed == [e.row for e in first_chunk]
    assert len(files.files) == sum(e.has_file for e in first_chunk)
    assert (result.state, result.exit_code) == ("interrupted", ExitCode.SIGTERM)
    assert (result.fields["rows"], result.fields["files_written"]) == (500, len(files.files))


@pytest.mark.parametrize("params", [SeedParams(rows=0), SeedParams(days=0)])
def test_nonsense_sizes_are_usage_errors(params: SeedParams) -> None:
    with pytest.raises(UsageError):
        demo_seed.run(context(), SeedPorts(FakeSeeder(), None), params)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
