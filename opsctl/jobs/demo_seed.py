"""``demo seed``: realistic, reproducible export rows and the files behind them.

Every other command needs history to work on: failures to rate, expired files to delete,
rows old enough to archive. The generator is pure (a seeded RNG and an injected ``now``)
and streams rows in ascending ``created_at``, so ids grow with time as in the real service
and a million rows never sit in memory. Each row draws the same count of random numbers
whatever its fate, so one ``--seed`` gives the same ids, users, formats and sizes on any day;
only the statuses that depend on age move with the clock.
"""

from __future__ import annotations

import math
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate, islice
from random import Random
from typing import NamedTuple

from opsctl.errors import UsageError
from opsctl.events import rfc3339
from opsctl.exit_codes import ExitCode
from opsctl.jobs.context import JobContext
from opsctl.jobs.result import JobResult
from opsctl.ports import ExportFileWriter, ExportRow, ExportTableSeeder

JOB = "demo.seed"
SUMMARY = "demo_seeded"
STATUSES = ("queued", "processing", "completed", "failed", "expired")

FORMATS = (("json", 0.40), ("jsonl", 0.25), ("csv", 0.20), ("markdown", 0.15))
FORMAT_NAMES = tuple(name for name, _ in FORMATS)
FORMAT_CUMULATIVE = tuple(accumulate(share for _, share in FORMATS))[:-1]
EXTENSIONS = {"json": "json", "jsonl": "jsonl", "csv": "csv", "markdown": "md"}
# Bytes per conversation: JSON carries the most markup, CSV the least.
BYTES_PER_CONVERSATION = {"json": 220, "jsonl": 200, "csv": 120, "markdown": 160}
# Files are real and as big as their row says, so keep them small: a 100k-row seed writes
# ~20k files, ~90 MB.
MIN_FILE_BYTES, MAX_FILE_BYTES = 1_000, 200_000

FILE_LIFETIME = timedelta(days=7)  # expires_at = created_at + 7 days
# Files that expired this recently are still on disk: the cleanup has not caught up yet.
CLEANUP_BACKLOG = timedelta(days=2)
STRAGGLER_SHARE = 0.03  # older expired files that were never cleaned up
MISSING_SHARE = 0.02  # backlog rows whose file is already gone (files cleanup: "missing")

BASE_FAILURE_RATE = 0.08
# One incident (an S3 outage) 50 hours before now, 3 hours long, for metrics to find.
INCIDENT_START, INCIDENT_LENGTH, INCIDENT_FAILURE_RATE = 50 * 3600, 3 * 3600, 0.45

# Share of exports per hour of day (UTC): quiet nights, busy office hours.
HOURLY = (0.20, 0.15, 0.12, 0.10, 0.10, 0.12, 0.20, 0.35, 0.60, 0.85, 1.00, 1.00,
          0.95, 0.95, 1.00, 1.00, 0.95, 0.85, 0.70, 0.55, 0.45, 0.38, 0.30, 0.25)
WEEKEND = 0.55
GROWTH = 0.30  # the service grows: the last hour is 30 % busier than the first


class _Error(NamedTuple):
    kind: str
    weight: float
    incident_weight: float
    message: str  # {n} and {a} are filled from the row's own draw


ERRORS = (
    _Error("timeout", 0.30, 0.15, "export timed out after 30s waiting for the renderer"),
    _Error("storage_error", 0.20, 0.70,
           "upload to object storage failed: 503 SlowDown (attempt {a} of 3)"),
    _Error("serialization_error", 0.20, 0.05,
           "could not serialize conversation {n}: invalid UTF-8 in message body"),
    _Error("rate_limited", 0.18, 0.05, "upstream API returned 429, retry after {a}s"),
    _Error("permission_denied", 0.12, 0.05,
           "user may not export workspace ws-{n}: missing export permission"),
)


class DemoExport(NamedTuple):
    row: ExportRow
    has_file: bool  # False for rows whose file is gone or was never written


def generate(seed: int, rows: int, days: int, now: datetime) -> Iterator[DemoExport]:
    """``rows`` exports created over the ``days`` before ``now``, oldest first."""
    rng = Random(seed)
    rand, bits, expo = rng.random, rng.getrandbits, rng.expovariate
    start = now - timedelta(days=days)
    timeline = _Timeline(start, now)
    span = timeline.span
    lifetime, backlog = FILE_LIFETIME.total_seconds(), CLEANUP_BACKLOG.total_seconds()
    users = max(50, rows // 40)
    day, day_prefix = -1, ""
    u = 0.0
    log, sqrt, cos, exp, tau = math.log, math.sqrt, math.cos, math.exp, math.tau
    offset_of = timeline.offset
    for remaining in range(rows, 0, -1):
        # The next of ``remaining`` sorted uniforms on (u, 1): O(1) memory, ascending times.
        u += (1.0 - u) * -math.expm1(-expo(remaining))
        offset = offset_of(u)
        age = span - offset
        created = start + timedelta(0, offset)
        export_id = _uuid4(bits(128))
        user = f"user-{int(users * rand() ** 3):05d}"  # a few heavy users, a long tail
        fmt = FORMAT_NAMES[bisect(FORMAT_CUMULATIVE, rand())]
        # Three standard normals by Box-Muller, two draws each (random.gauss may take more).
        z1 = sqrt(-2.0 * log(1.0 - rand())) * cos(tau * rand())
        z2 = sqrt(-2.0 * log(1.0 - rand())) * cos(tau * rand())
        duration_z = sqrt(-2.0 * log(1.0 - rand())) * cos(tau * rand())
        conversations = min(400, 1 + int(12 * exp(0.9 * z1)))
        size = 200 + int(conversations * BYTES_PER_CONVERSATION[fmt] * exp(0.25 * z2))
        size = MIN_FILE_BYTES if size < MIN_FILE_BYTES else min(MAX_FILE_BYTES, size)
        r_flight, r_queue, r_fail, r_error, r_detail, r_fate, r_missing = (
            rand(), rand(), rand(), rand(), rand(), rand(), rand())

        if (age < 600 and r_flight < 0.6) or (age < 3600 and r_flight < 0.25):
            status = "queued" if r_queue < 0.4 else "processing"
            yield DemoExport(ExportRow(export_id, user, fmt, status, conversations, None, None,
                                       None, None, None, created, None), False)
            continue
        in_incident = INCIDENT_START - INCIDENT_LENGTH < age <= INCIDENT_START
        if r_fail < (INCIDENT_FAILURE_RATE if in_incident else BASE_FAILURE_RATE):
            error = _pick_error(r_error, in_incident)
            yield DemoExport(ExportRow(
                export_id, user, fmt, "failed", conversations,
                _failure_duration(error.kind, duration_z), None, None, error.kind,
                _message(error, r_detail), created, None), False)
            continue
        # Bigger exports take longer: median ~1.5 s, long log-normal tail.
        duration = 1500 * (conversations / 12) ** 0.25 * exp(0.75 * duration_z)
        expired_for = age - lifetime
        status, has_file = "completed", True
        if expired_for > backlog and r_fate >= STRAGGLER_SHARE:
            status, has_file = "expired", False
        elif expired_for > 0 and r_missing < MISSING_SHARE:
            has_file = False
        if created.toordinal() != day:  # strftime is slow; rows arrive in date order
            day, day_prefix = created.toordinal(), f"{created:%Y/%m/%d}/"
        yield DemoExport(ExportRow(
            export_id, user, fmt, status, conversations, min(600_000, max(50, round(duration))),
            size, f"{day_prefix}{export_id}.{EXTENSIONS[fmt]}", None, None, created,
            created + FILE_LIFETIME), has_file)


def document(row: ExportRow) -> bytes:
    """A file of exactly ``file_size_bytes`` bytes, shaped like its format, so files
    cleanup frees what the row says."""
    size = row.file_size_bytes or 0
    head, tail = {
        "json": (f'{{"export_id": "{row.export_id}", "conversation_count": '
                 f'{row.conversation_count}, "conversations": "', '"}\n'),
        "jsonl": (f'{{"export_id": "{row.export_id}", "conversation": "', '"}\n'),
        "csv": (f"export_id,conversation_count,text\n{row.export_id},"
                f"{row.conversation_count},", "\n"),
        "markdown": (f"# Export {row.export_id}\n\n{row.conversation_count} conversations\n\n",
                     "\n"),
    }[row.format]
    start, end = head.encode(), tail.encode()
    return start + _FILLER[: max(0, size - len(start) - len(end))] + end


_FILLER = (b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
           * (MAX_FILE_BYTES // 70 + 1))


@dataclass(frozen=True)
class SeedParams:
    rows: int = 10_000
    days: int = 45
    seed: int = 0
    truncate: bool = False
    table: str = "export_logs"
    chunk_size: int = 5_000


@dataclass(frozen=True)
class SeedPorts:
    table: ExportTableSeeder
    files: ExportFileWriter | None = None  # None: rows only (--no-files)


@dataclass
class _Tally:
    rows: int = 0
    files: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_format: Counter[str] = field(default_factory=Counter)
    oldest: datetime | None = None
    newest: datetime | None = None

    def add(self, chunk: list[DemoExport], files: bool) -> None:
        self.rows += len(chunk)
        self.by_status.update(export.row.status for export in chunk)
        self.by_format.update(export.row.format for export in chunk)
        if files:
            self.files += sum(export.has_file for export in chunk)
        self.oldest = self.oldest or chunk[0].row.created_at
        self.newest = chunk[-1].row.created_at


def run(ctx: JobContext, ports: SeedPorts, params: SeedParams) -> JobResult:
    if params.rows < 1 or params.days < 1 or params.chunk_size < 1:
        raise UsageError("--rows and --days must be at least 1")
    started = ctx.now()
    rows = generate(params.seed, params.rows, params.days, started)
    before = ports.table.row_count()
    tally, removed, stopped = _Tally(), 0, False
    progress = ctx.progress("seeding exports", params.rows, "rows")
    try:
        if ctx.dry_run:
            removed = (before or 0) if params.truncate else 0
            for chunk in _chunks(rows, params.chunk_size):
                tally.add(chunk, files=ports.files is not None)
                progress.advance(len(chunk))
        else:
            with ports.table.seeding(truncate=params.truncate) as sink:
                removed = sink.removed
                for chunk in _chunks(rows, params.chunk_size):
                    sink.write([export.row for export in chunk])
                    _write_files(ports.files, chunk)
                    tally.add(chunk, files=ports.files is not None)
                    progress.advance(len(chunk))
                    if ctx.stop_requested:  # keep what is done: rows and files agree
                        stopped = True
                        break
    finally:
        progress.close()
    return _result(ctx, ports, params, tally, before is None, removed, started, stopped)


def _write_files(files: ExportFileWriter | None, chunk: list[DemoExport]) -> None:
    if files is None:
        return
    for export in chunk:
        if export.has_file and export.row.file_path:
            files.write(export.row.file_path, document(export.row))


def _result(
    ctx: JobContext, ports: SeedPorts, params: SeedParams, tally: _Tally, created: bool,
    removed: int, started: datetime, stopped: bool,
) -> JobResult:
    root = ports.files.location if ports.files is not None else None
    verb = "would seed" if ctx.dry_run else "seeded"
    message = f"{verb} {tally.rows:,} exports into {params.table}" + (
        f" and {tally.files:,} files under {root}" if root else "")
    fields = {
        "dry_run": ctx.dry_run,
        "table": params.table,
        "table_created": created,
        "truncated": params.truncate,
        "rows_removed": removed,
        "rows": tally.rows,
        "by_status": {status: tally.by_status[status] for status in STATUSES},
        "by_format": {fmt: tally.by_format[fmt] for fmt, _ in FORMATS},
        "files_written": tally.files,
        "storage_root": root,
        "seed": params.seed,
        "days": params.days,
        "oldest_created_at": rfc3339(tally.oldest) if tally.oldest else None,
        "newest_created_at": rfc3339(tally.newest) if tally.newest else None,
        "duration_ms": int((ctx.now() - started).total_seconds() * 1000),
    }
    if stopped:
        code = ctx.runtime.stop.exit_code or ExitCode.SIGINT
        return JobResult(SUMMARY, f"interrupted: {message}", "interrupted", code, fields)
    return JobResult(SUMMARY, message, "ok", ExitCode.OK, fields)


class _Timeline:
    """Maps a uniform in [0, 1) to a time with a daily and weekly rhythm.

    Hour-long buckets weighted by hour of day, weekday and growth; callers pass ascending
    values, so a cursor replaces a binary search.
    """

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.span = span = (end - start).total_seconds()
        first = start.replace(minute=0, second=0, microsecond=0)
        self._bounds: list[float] = []  # bucket start offsets (seconds from start)
        weights: list[float] = []
        edge = first
        while edge < end:
            lo = max(0.0, (edge - start).total_seconds())
            hi = min(span, (edge + timedelta(hours=1) - start).total_seconds())
            weekday = WEEKEND if edge.weekday() >= 5 else 1.0
            weights.append(HOURLY[edge.hour] * weekday * (1 + GROWTH * lo / span) * (hi - lo))
            self._bounds.append(lo)
            edge += timedelta(hours=1)
        self._bounds.append(span)
        total = sum(weights)
        self._cumulative = [0.0]
        for weight in weights:
            self._cumulative.append(self._cumulative[-1] + weight / total)
        self._cumulative[-1] = 1.0
        self._cursor = 0

    def offset(self, u: float) -> float:
        cum, i = self._cumulative, self._cursor
        while i < len(cum) - 2 and u >= cum[i + 1]:
            i += 1
        self._cursor = i
        share = (u - cum[i]) / (cum[i + 1] - cum[i]) if cum[i + 1] > cum[i] else 0.0
        return self._bounds[i] + min(1.0, share) * (self._bounds[i + 1] - self._bounds[i])


def _uuid4(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))``, without the UUID object's cost."""
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _pick_error(r: float, in_incident: bool) -> _Error:
    for error in ERRORS:
        weight = error.incident_weight if in_incident else error.weight
        if r < weight:
            return error
        r -= weight
    return ERRORS[-1]


def _failure_duration(kind: str, z: float) -> int:
    if kind == "timeout":
        return 30_000 + int(abs(z) * 400)  # the renderer's 30-second limit, and overhead
    if kind == "rate_limited":
        return int(math.exp(math.log(120) + 0.5 * z))
    return int(math.exp(math.log(800) + 0.8 * z))


def _message(error: _Error, r: float) -> str:
    n = int(r * 1_000_000)
    return error.message.format(n=n, a=1 + n % (60 if error.kind == "rate_limited" else 3))


def _chunks(rows: Iterator[DemoExport], size: int) -> Iterator[list[DemoExport]]:
    while chunk := list(islice(rows, size)):
        yield chunk
