"""The small interfaces jobs talk to; adapters implement them, tests fake them in memory.

Each port is a few methods wide on purpose: a job that needs more is asking the adapter to
carry domain logic that belongs in the job.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol


@dataclass(frozen=True)
class RunRecord:
    """One finished job run, as kept in ``opsctl_runs``."""

    job: str
    run_id: str
    host: str
    started_at: datetime
    finished_at: datetime
    state: str
    exit_code: int
    duration_ms: int
    summary: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None


class RunBookkeeping(Protocol):
    """What the job runner needs around every job: schema, lock, history."""

    def ensure_schema(self) -> None:
        """Create or upgrade opsctl's own tables (idempotent)."""

    def job_lock(self, job: str) -> AbstractContextManager[None]:
        """Hold the job's lock for the run; raise ``LockHeld`` when another run has it."""

    def record_run(self, run: RunRecord) -> None: ...

    def prune_runs(self, older_than: datetime) -> int:
        """Delete run history older than ``older_than``; return how many rows went."""


class Progress(Protocol):
    """Progress of long work, for a person at a terminal; a no-op everywhere else."""

    def advance(self, amount: int = 1) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, description: str, total: int | None, unit: str) -> Progress: ...


class NoProgress:
    def advance(self, amount: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(description: str, total: int | None, unit: str) -> Progress:
    return NoProgress()


# --- failure-rate check ----------------------------------------------------------------


@dataclass(frozen=True)
class ErrorTypeCount:
    error_type: str
    count: int


@dataclass(frozen=True)
class OutcomeCounts:
    """Finished exports in a window: the two numbers a failure rate is made of."""

    completed: int
    failed: int
    top_error_types: tuple[ErrorTypeCount, ...] = ()


class FailureCounts(Protocol):
    def counts(self, start: datetime, end: datetime, top: int) -> OutcomeCounts:
        """Completed and failed exports created in ``[start, end)``, and the ``top`` most
        frequent error types among the failed ones."""


@dataclass(frozen=True)
class AlertState:
    """One alert's memory between stateless cron runs (a row of ``opsctl_alert_state``)."""

    name: str
    state: str  # "open" | "resolved"
    updated_at: datetime
    opened_at: datetime | None = None
    last_notified_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AlertStateStore(Protocol):
    def load(self, name: str) -> AlertState | None:
        """The alert's last saved state; None when it never fired (or no table yet)."""

    def save(self, state: AlertState) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """How a notification went; ``error`` is safe to show (it never holds the URL)."""

    delivered: bool
    attempts: int
    error: str | None = None


class Notifier(Protocol):
    def send(self, payload: dict[str, Any]) -> Delivery:
        """Deliver ``payload``; never raises for an unreachable receiver."""


# --- files cleanup --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiredExport:
    """One candidate of files cleanup: a row whose file may be deleted."""

    id: int
    export_id: str
    file_path: str
    file_size_bytes: int | None


@dataclass(frozen=True)
class FileOutcome:
    """What a file store did (or, in a dry run, would do) with one file.

    ``state`` is ``deleted``, ``missing`` (already gone: the row may still be marked
    expired) or ``failed`` (refused or not deletable: the row must stay as it is).
    ``size`` is the bytes freed: the row's ``file_size_bytes``, else the file's real size.
    """

    export: ExpiredExport
    state: str
    size: int = 0
    error_kind: str | None = None
    error_message: str | None = None


class ExpiredExports(Protocol):
    """The rows files cleanup walks, in id order, and marks ``expired``."""

    def count(self, now: datetime) -> int:
        """How many rows are candidates at ``now`` (for the summary and the progress bar)."""

    def batch(self, now: datetime, after_id: int | None, size: int) -> list[ExpiredExport]:
        """The next ``size`` candidates with ``id > after_id`` (from the first when None),
        in id order."""

    def mark_expired(self, ids: list[int]) -> int:
        """Set these rows' status to ``expired`` in one short transaction."""


class FileStore(Protocol):
    """Where export files live. Works on chunks so S3 can delete 1000 keys per request.

    Per-file problems come back as ``failed`` outcomes; only a store that cannot be reached
    at all raises ``StorageUnavailable``, and then nothing of that chunk was done.
    """

    backend: str
    max_chunk: int

    def delete(self, files: list[ExpiredExport]) -> list[FileOutcome]: ...

    def check(self, files: list[ExpiredExport]) -> list[FileOutcome]:
        """What ``delete`` would do, touching nothing (dry run)."""


# --- demo seed ---------------------------------------------------------------------------


class ExportRow(NamedTuple):
    """One row of the monitored export table, by contract column (``id`` is the database's)."""

    export_id: str
    user_id: str
    format: str
    status: str
    conversation_count: int
    duration_ms: int | None
    file_size_bytes: int | None
    file_path: str | None
    error_type: str | None
    error_message: str | None
    created_at: datetime
    expires_at: datetime | None


class ExportRowSink(Protocol):
    """The open side of a seeding transaction: rows written here commit together."""

    @property
    def removed(self) -> int:
        """Rows deleted before the first write because truncation was asked for."""

    def write(self, rows: Sequence[ExportRow]) -> None: ...


class ExportTableSeeder(Protocol):
    """Bulk-fills the export table with generated rows (``demo seed``)."""

    def row_count(self) -> int | None:
        """Rows in the table now; None when the table does not exist yet."""

    def seeding(self, *, truncate: bool) -> AbstractContextManager[ExportRowSink]:
        """Create the table when missing, optionally empty it, and hold one transaction."""


class ExportFileWriter(Protocol):
    """Puts export files under the storage root, keyed like ``file_path``."""

    @property
    def location(self) -> str:
        """Where the files go, for people reading the summary."""

    def write(self, key: str, data: bytes) -> None: ...


# --- health probe ------------------------------------------------------------------------

CheckState = Literal["ok", "warning", "critical"]


@dataclass(frozen=True)
class CheckFinding:
    """What one health check saw, before the probe applies the check's ``critical`` flag.

    A failure is ``critical`` here; the probe turns it into ``warning`` for a check
    configured ``critical = false``. ``error_kind`` is one short word a log pipeline can
    facet on (refused, timeout, status, tls, slow, threshold, stale, never_run, ...);
    ``error_message`` is safe to show (never a URL or a password).
    """

    state: CheckState = "ok"
    error_kind: str | None = None
    error_message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Probe(Protocol):
    def check(self, timeout_s: float) -> CheckFinding:
        """Look once, giving up after ``timeout_s``; raise an ``OpsctlError`` (for example
        ``DatabaseUnavailable``) when the dependency cannot be reached at all."""


@dataclass(frozen=True)
class ConfiguredCheck:
    """A ``[[health.checks]]`` entry bound to the probe that carries it out."""

    name: str
    kind: str
    critical: bool
    timeout_s: float | None
    probe: Probe


# --- run history reports (runs list / runs stats) ---------------------------------------


@dataclass(frozen=True)
class JobRunTotals:
    """One job's runs over a window, aggregated by the run history.

    ``failed`` counts runs whose exit code is not among the caller's success codes, so what
    "failed" means is decided by the job, not by the database adapter.
    """

    job: str
    runs: int
    failed: int
    avg_duration_ms: float | None
    p95_duration_ms: float | None
    last_run_at: datetime
    last_state: str
    last_exit_code: int
    last_success_at: datetime | None
    consecutive_failures: int


class RunHistory(Protocol):
    """Read side of ``opsctl_runs``; an absent table is an empty history, not an error."""

    def recent_runs(
        self, *, job: str | None, since: datetime | None, limit: int
    ) -> list[RunRecord]:
        """Runs finished at or after ``since``, newest first, at most ``limit``."""

    def job_totals(
        self, since: datetime, success_exit_codes: frozenset[int]
    ) -> list[JobRunTotals]:
        """Per job with a run finished at or after ``since``, ordered by job name."""


# --- metrics aggregate -----------------------------------------------------------------


@dataclass(frozen=True)
class FormatAggregate:
    """One export format's rows in a window, as the database counted them.

    Durations and file sizes are those of *completed* exports only (a failed export's
    duration measures how long it took to fail, and it leaves no file); the ``*_count``
    fields say how many of them had a value, so averages divide by the right number.
    """

    format: str
    total: int
    completed: int
    failed: int
    duration_count: int
    duration_sum: int
    p95_duration_ms: float | None
    file_size_count: int
    file_size_sum: int


@dataclass(frozen=True)
class WindowAggregate:
    """Everything ``metrics aggregate`` needs from one window; rates are the job's to make."""

    formats: tuple[FormatAggregate, ...]
    p50_duration_ms: float | None
    p95_duration_ms: float | None
    p99_duration_ms: float | None
    top_error_types: tuple[ErrorTypeCount, ...] = ()


class MetricsSource(Protocol):
    def aggregate(self, start: datetime, end: datetime, top: int) -> WindowAggregate:
        """Exports created in ``[start, end)``: per-format counts and sums, PostgreSQL
        ``percentile_cont`` durations of completed exports (overall p50/p95/p99, p95 per
        format), and the ``top`` error types of failed exports (count desc, then name)."""


@dataclass(frozen=True)
class MetricRollup:
    """One row of ``opsctl_metric_rollups``; (period, window_start, window_end) is its key."""

    period: str
    window_start: datetime
    window_end: datetime
    total_exports: int
    failure_rate: float | None
    metrics: dict[str, Any]
    computed_at: datetime


class RollupStore(Protocol):
    def upsert(self, rollup: MetricRollup) -> None:
        """Insert the rollup, or replace the one with the same key: reruns never duplicate."""


# --- logs stats / logs cleanup ---------------------------------------------------------------


@dataclass(frozen=True)
class LogTableStats:
    total_rows: int
    eligible: int  # rows with created_at before the cutoff
    oldest_created_at: datetime | None
    newest_created_at: datetime | None


class LogStatsSource(Protocol):
    def stats(self, cutoff: datetime) -> LogTableStats:
        """Counts and bounds of the export log table, read in one snapshot."""


@dataclass(frozen=True)
class LogBatch:
    """Eligible rows ``first_id`` .. ``last_id`` as JSON lines, one row per line.

    ``rows`` and ``id_sum`` identify the set of rows, so the delete can check that it
    removes exactly the rows that were archived and nothing that appeared since.
    """

    first_id: int
    last_id: int
    rows: int
    id_sum: int
    payload: bytes


class OldLogs(Protocol):
    """The rows ``logs cleanup`` removes: created before a cutoff, walked by id."""

    def count_eligible(self, cutoff: datetime) -> int: ...

    def delete_batches(self, cutoff: datetime, size: int) -> Generator[int, None, None]:
        """Delete eligible rows ``size`` at a time, without archive, yielding the count of
        each batch; nothing is in flight at a yield. Close the generator when done."""

    def batches(
        self, cutoff: datetime, size: int, after_id: int | None = None
    ) -> Generator[LogBatch, None, None]:
        """Eligible rows in id order, ``size`` per batch; close the generator when done."""

    def delete_batch(self, batch: LogBatch, cutoff: datetime) -> bool:
        """Delete exactly the batch's rows in one transaction; False (nothing deleted) when
        the rows in its id range changed since it was read."""

    def delete_ids(self, ids: Sequence[int]) -> int:
        """Delete these rows (what a killed run had archived); return how many were there."""


@dataclass(frozen=True)
class ArchivedObject:
    name: str
    uri: str
    bytes: int  # compressed size as stored
    sha256: str  # of the stored (compressed) bytes


class LogArchive(Protocol):
    """Where archive objects go: gzip-compressed, written atomically, read back to verify.

    Every failure to reach or write the archive raises ``ArchiveUnavailable`` (exit 3).
    """

    uri: str

    def write(self, name: str, payload: bytes) -> ArchivedObject:
        """Compress ``payload`` and store it as ``name``, replacing any object of that name."""

    def verify(self, written: ArchivedObject) -> None:
        """Read the object back; raise ``ArchiveUnavailable`` unless size and sha256 match."""

    def read(self, name: str) -> bytes | None:
        """The decompressed content of ``name``; None when there is no such object."""

    def remove(self, name: str) -> None:
        """Delete ``name`` if it exists."""
