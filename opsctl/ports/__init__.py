"""The small interfaces jobs talk to; adapters implement them, tests fake them in memory.

Each port is a few methods wide on purpose: a job that needs more is asking the adapter to
carry domain logic that belongs in the job. One module per job family; every name is also
importable from ``opsctl.ports``.

The modules are imported on first use of one of their names (PEP 562), not all at once: a
run of one job loads the few ports it uses, not every family's. The ``TYPE_CHECKING``
imports below are what type checkers read and, parsed once, where each name lives.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsctl.ports.alerting import Alert, AlertPublisher, AlertSync, Resolvable
    from opsctl.ports.alerts import (
        AlertState,
        AlertStateStore,
        Delivery,
        ErrorTypeCount,
        FailureCounts,
        Notifier,
        OutcomeCounts,
    )
    from opsctl.ports.archive import ArchiveCatalog, ArchiveObjects, CatalogEntry, StoredObject
    from opsctl.ports.audit import (
        FindingReport,
        ReferencedPath,
        ReferencedPaths,
        StorageListing,
        StoredFile,
    )
    from opsctl.ports.backfill import PeriodMetricsSource, StoredRollups
    from opsctl.ports.demo import ExportFileWriter, ExportRow, ExportRowSink, ExportTableSeeder
    from opsctl.ports.files import ExpiredExport, ExpiredExports, FileOutcome, FileStore
    from opsctl.ports.guard import DeletionHistory
    from opsctl.ports.health import CheckFinding, CheckState, ConfiguredCheck, Probe
    from opsctl.ports.logs import (
        ArchivedObject,
        CatalogRecord,
        HeldBatch,
        HeldLogs,
        LogArchive,
        LogBatch,
        LogStatsSource,
        LogTableStats,
        OldLogs,
        PoisonRow,
        Settlement,
        StagedObject,
    )
    from opsctl.ports.metrics import (
        FormatAggregate,
        MetricRollup,
        MetricsSource,
        RollupStore,
        WindowAggregate,
    )
    from opsctl.ports.observers import RunEnd, RunObserver, RunStart
    from opsctl.ports.partitions import HeldPartition, LogPartitions, Partition, PartitionPlan
    from opsctl.ports.progress import NoProgress, Progress, ProgressFactory, no_progress
    from opsctl.ports.restore import LoadCounts, ObjectLoad, RestoreTarget, RestoreWindow
    from opsctl.ports.runs import JobRunTotals, RunBookkeeping, RunHistory, RunRecord
    from opsctl.ports.schedules import (
        FailedRun,
        HistorySnapshot,
        JobHistory,
        OpenAlert,
        PendingWork,
        RunBrief,
        ScheduleHistory,
        StatusSource,
    )
    from opsctl.ports.series import MetricSeriesSource, PeriodTotals

__all__ = [
    "Alert",
    "AlertPublisher",
    "AlertState",
    "AlertStateStore",
    "AlertSync",
    "ArchiveCatalog",
    "ArchiveObjects",
    "ArchivedObject",
    "CatalogEntry",
    "CatalogRecord",
    "CheckFinding",
    "CheckState",
    "ConfiguredCheck",
    "DeletionHistory",
    "Delivery",
    "ErrorTypeCount",
    "ExpiredExport",
    "ExpiredExports",
    "ExportFileWriter",
    "ExportRow",
    "ExportRowSink",
    "ExportTableSeeder",
    "FailedRun",
    "FailureCounts",
    "FileOutcome",
    "FileStore",
    "FindingReport",
    "FormatAggregate",
    "HeldBatch",
    "HeldLogs",
    "HeldPartition",
    "HistorySnapshot",
    "JobHistory",
    "JobRunTotals",
    "LoadCounts",
    "LogArchive",
    "LogBatch",
    "LogPartitions",
    "LogStatsSource",
    "LogTableStats",
    "MetricRollup",
    "MetricSeriesSource",
    "MetricsSource",
    "NoProgress",
    "Notifier",
    "ObjectLoad",
    "OldLogs",
    "OpenAlert",
    "OutcomeCounts",
    "Partition",
    "PartitionPlan",
    "PendingWork",
    "PeriodMetricsSource",
    "PeriodTotals",
    "PoisonRow",
    "Probe",
    "Progress",
    "ProgressFactory",
    "ReferencedPath",
    "ReferencedPaths",
    "Resolvable",
    "RestoreTarget",
    "RestoreWindow",
    "RollupStore",
    "RunBookkeeping",
    "RunBrief",
    "RunEnd",
    "RunHistory",
    "RunObserver",
    "RunRecord",
    "RunStart",
    "ScheduleHistory",
    "Settlement",
    "StagedObject",
    "StatusSource",
    "StorageListing",
    "StoredFile",
    "StoredObject",
    "StoredRollups",
    "WindowAggregate",
    "no_progress",
]


_LOCATIONS: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    if not _LOCATIONS:
        tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "opsctl.ports."):
                for alias in node.names:
                    _LOCATIONS[alias.asname or alias.name] = str(node.module)
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
