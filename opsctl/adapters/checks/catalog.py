"""From ``[[health.checks]]`` to runnable checks: the defaults, and one probe per kind.

Each kind's module is imported only when a check of that kind is configured, so a probe
of the database alone never pays for boto3 or httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from opsctl.ports import ConfiguredCheck, Probe
from opsctl.settings.health import (
    DatabaseCheck,
    DiskCheck,
    FreshnessCheck,
    HealthCheck,
    HttpCheck,
    S3Check,
    SqlCheck,
    TcpCheck,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from opsctl.settings import Settings


def effective_checks(settings: Settings, environ: Mapping[str, str]) -> list[HealthCheck]:
    """The configured checks; with none, the ones a newcomer's first probe should run.

    The database always; the export storage too when there is something to look at: the
    local root's disk when the directory exists, the bucket when storage is S3.
    """
    if settings.health.checks:
        return list(settings.health.checks)
    from opsctl.settings import storage_root

    checks: list[HealthCheck] = [DatabaseCheck(name="database", kind="database")]
    if settings.storage.backend == "local":
        root = storage_root(settings, environ)
        if root.is_dir():
            checks.append(DiskCheck(name="storage", kind="disk", path=root))
    elif settings.storage.bucket:
        checks.append(S3Check(name="storage", kind="s3", bucket=settings.storage.bucket))
    return checks


def build(
    checks: list[HealthCheck],
    settings: Settings,
    environ: Mapping[str, str],
    clock: Callable[[], datetime],
    *,
    dry_run: bool = False,
) -> list[ConfiguredCheck]:
    return [
        ConfiguredCheck(check.name, check.kind, check.is_critical, check.timeout_s,
                        _probe(check, settings, environ, clock, dry_run))
        for check in checks
    ]


def _probe(
    check: HealthCheck,
    settings: Settings,
    environ: Mapping[str, str],
    clock: Callable[[], datetime],
    dry_run: bool,
) -> Probe:
    from opsctl.settings import database_url

    url, connect_s = database_url(settings, environ), settings.database.connect_timeout_s
    if isinstance(check, DatabaseCheck):
        from opsctl.adapters.checks.database import DatabaseProbe

        return DatabaseProbe(url, connect_s, read_only=dry_run)
    if isinstance(check, HttpCheck):
        from opsctl.adapters.checks.http import HttpProbe

        expect = tuple(check.expect_status) if check.expect_status is not None else None
        return HttpProbe(check.url.get_secret_value(), expect, check.max_latency_ms)
    if isinstance(check, TcpCheck):
        from opsctl.adapters.checks.tcp import TcpProbe

        return TcpProbe(check.host, check.port)
    if isinstance(check, S3Check):
        from opsctl.adapters.checks.s3 import S3Probe

        return S3Probe(check.bucket, settings.s3, environ)
    if isinstance(check, DiskCheck):
        from opsctl.adapters.checks.disk import DiskProbe

        return DiskProbe(check.path, check.min_free_percent)
    if isinstance(check, SqlCheck):
        from opsctl.adapters.checks.sql import SqlProbe

        return SqlProbe(url, connect_s, check.query, check.judge, check.warning,
                        check.critical_threshold, role=settings.health.sql_role,
                        allow_superuser=settings.health.allow_superuser)
    if isinstance(check, FreshnessCheck) and check.by_schedule:
        from opsctl.adapters.checks.freshness import ScheduleProbe

        return ScheduleProbe(url, connect_s, check.job, settings.schedule.cron(check.job),
                             settings.schedule.grace_td, clock)
    if isinstance(check, FreshnessCheck):
        from opsctl.adapters.checks.freshness import FreshnessProbe

        return FreshnessProbe(url, connect_s, check.job, check.max_age_td, clock)
    raise AssertionError(f"no probe for check kind {check.kind!r}")
