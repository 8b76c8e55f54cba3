"""The exception tree: each error knows its exit code and its ``kind`` for the error event.

Adapters translate foreign exceptions (driver, SDK, HTTP client) into these with
``raise ... from exc`` so nothing above them ever has to know which library failed.

    OpsctlError
    ├── UsageError              64  bad value on the command line
    ├── ConfigError             78  invalid configuration (names the key)
    │   └── SourceSchemaError       the source table or a column of it is missing
    ├── LockHeld                75  the same job is already running
    ├── Interrupted         130/143 SIGINT or SIGTERM
    └── DependencyUnavailable    3  could not do or judge the work
        ├── DatabaseUnavailable
        ├── StorageUnavailable
        ├── ArchiveUnavailable
        └── OperationTimeout
"""

from __future__ import annotations

from opsctl.exit_codes import ExitCode


class OpsctlError(Exception):
    """Base of every error opsctl reports as an ``error`` event."""

    exit_code: ExitCode = ExitCode.UNKNOWN
    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(OpsctlError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class ConfigError(OpsctlError):
    """The configuration is invalid; ``key`` is the dotted key at fault when known."""

    exit_code = ExitCode.CONFIG
    kind = "config"

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class LockHeld(OpsctlError):
    exit_code = ExitCode.SKIPPED
    kind = "lock_held"


class Interrupted(OpsctlError):
    """Raised when a signal asks a job to stop; carries 130 (SIGINT) or 143 (SIGTERM)."""

    kind = "interrupted"

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DependencyUnavailable(OpsctlError):
    exit_code = ExitCode.UNKNOWN
    kind = "dependency_unavailable"


class DatabaseUnavailable(DependencyUnavailable):
    """The database could not do the work. ``answered`` is True when it did answer (with
    an error): such a run is still recorded in history, where a database that could not
    be reached at all is not worth another connect timeout."""

    kind = "database_unavailable"
    answered = False


class StorageUnavailable(DependencyUnavailable):
    kind = "storage_unavailable"


class ArchiveUnavailable(DependencyUnavailable):
    kind = "archive_unavailable"


class OperationTimeout(DependencyUnavailable):
    kind = "timeout"


class SourceSchemaError(ConfigError):
    """The configured source table, or one of its columns, is not in the database.

    The database answered, so this is no outage (3) but a ``[source] table`` /
    ``[source.columns]`` problem (78), and the run is recorded in history like any failure.
    """

    kind = "source_missing"
