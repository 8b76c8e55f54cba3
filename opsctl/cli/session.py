"""The run context of one invocation: built from the global options, handed to commands.

Commands stay thin because everything they share lives here: the runtime, the settings
(loaded lazily, so ``--help`` never touches the config), the emitter, the database and
the call into the job runner. Heavy modules are imported inside the methods that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from opsctl.cli import startup
from opsctl.errors import ConfigError, OpsctlError
from opsctl.exit_codes import ExitCode
from opsctl.runtime import Runtime, resolve_output, wants_color

if TYPE_CHECKING:
    # Imported where they are used: `opsctl --version` and `--help` need none of them.
    from opsctl.adapters.db.database import Database
    from opsctl.cli.nagios import NagiosView
    from opsctl.events import Emitter, Redactor
    from opsctl.jobs.context import JobContext
    from opsctl.jobs.result import JobResult
    from opsctl.jobs.runner import JobOutcome
    from opsctl.ports import AlertPublisher, RunBookkeeping, RunObserver
    from opsctl.settings import Settings


@dataclass
class Environment:
    """What the process was started with; ``main`` builds it, tests pass their own."""

    environ: dict[str, str]
    stdout: TextIO
    stderr: TextIO
    exit_code: ExitCode | None = None
    session: Session | None = None

    @property
    def debug(self) -> bool:
        return self.session is not None and self.session.runtime.debug

    @property
    def settled(self) -> bool:
        """Whether the outcome (a summary or an error event) is decided: a signal
        arriving now must not change the exit code or add an event."""
        if self.exit_code is not None:
            return True
        return self.session is not None and self.session.runtime.stop.settled

    def fallback_runtime(self) -> Runtime:
        isatty = _isatty(self.stdout)
        requested = self.environ.get("OPSCTL_OUTPUT", "auto")
        return Runtime(stdout=self.stdout, stderr=self.stderr, env=self.environ,
                       output=resolve_output(requested, isatty), stdout_isatty=isatty)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Session:
    def __init__(self, env: Environment, runtime: Runtime, config_path: Path | None) -> None:
        self.env = env
        self.runtime = runtime
        self.config_path = config_path
        from opsctl.events import Redactor

        self._db: Database | None = None
        self.diagnostics_redactor: Redactor = Redactor()
        # Set by ``--format nagios``: the invocation prints one plugin status line instead.
        self.view: NagiosView | None = None

    @classmethod
    def start(
        cls, env: Environment, *, config: Path | None, output: str, log_level: str,
        no_color: bool,
    ) -> Session:
        stdout_tty, stderr_tty = _isatty(env.stdout), _isatty(env.stderr)
        runtime = Runtime(
            stdout=env.stdout, stderr=env.stderr, env=env.environ,
            output=resolve_output(output, stdout_tty),
            color=wants_color(no_color, env.environ, stdout_tty),
            log_level=log_level, stdout_isatty=stdout_tty, stderr_isatty=stderr_tty,
        )
        from opsctl.events import configure_diagnostics

        session = cls(env, runtime, config)
        env.session = session
        configure_diagnostics(runtime, session.diagnostics_redactor)
        return session

    def set_output(self, requested: str) -> None:
        """Switch the output mode after start (``-o`` given after the command)."""
        from opsctl.events import configure_diagnostics

        self.runtime.output = resolve_output(requested, self.runtime.stdout_isatty)
        configure_diagnostics(self.runtime, self.diagnostics_redactor)

    @classmethod
    def of(cls, ctx: typer.Context) -> Session:
        env = ctx.find_root().obj
        assert isinstance(env, Environment) and env.session is not None
        return env.session

    @cached_property
    def settings(self) -> Settings:
        from opsctl.settings import load_settings, secret_values

        settings = load_settings(self.config_path, self.runtime.env)
        self.diagnostics_redactor.add(secret_values(settings))
        return settings

    def secrets(self) -> list[str]:
        from opsctl.settings import secret_values

        try:
            return secret_values(self.settings)
        except ConfigError:
            return []

    def emitter(self, job: str | None = None) -> Emitter:
        from opsctl.cli import render
        from opsctl.events import Emitter

        return Emitter(self.runtime, job, self.secrets(),
                       sink=render.event_sink(self.runtime))

    def database(self, *, read_only: bool = False) -> Database:
        from opsctl.adapters.db.database import Database
        from opsctl.settings import database_url

        if self._db is None or self._db.read_only != read_only:
            db = self.settings.database
            self.close()
            # Pooled: the job, its lock and its bookkeeping share one connection; close()
            # (at the end of the run, or of the process) closes it.
            self._db = Database(
                database_url(self.settings, self.runtime.env),
                connect_timeout_s=db.connect_timeout_s,
                statement_timeout_s=db.statement_timeout_s,
                read_only=read_only,
                pooled=True,
            )
        return self._db

    def close(self) -> None:
        """Close the run's database connections (a no-op when none was opened)."""
        if self._db is not None:
            db, self._db = self._db, None
            db.dispose()

    def alertmanager(self) -> AlertPublisher | None:
        """The ``[alerts] alertmanager_url`` publisher, or None (httpx only when it is set)."""
        alerts = self.settings.alerts
        if alerts.alertmanager_url is None:
            return None
        from opsctl.adapters.notify.alertmanager import AlertmanagerPublisher

        return AlertmanagerPublisher(alerts.alertmanager_url, alerts.alertmanager_ttl_td,
                                     alerts.timeout_s, self.runtime.clock)

    def dry_run(self, flag: bool = False) -> bool:
        return flag or self.runtime.forced_dry_run

    def write_files(
        self, result: JobResult, paths: list[Path], write: Callable[[], object], *,
        dry_run: bool = False,
    ) -> JobResult:
        """Write the files a command was asked for (``--out``, ``--html``, ``--report``),
        or, in a dry run, which writes nothing, only say which it would have written: the
        summary then carries ``dry_run: true`` and ``would_write``. Its exit code stays."""
        if not self.dry_run(dry_run):
            write()
            return result
        would = [str(path) for path in paths]
        result.fields["dry_run"] = True
        result.fields["would_write"] = would
        result.message = f"{result.message} (dry run: would write {', '.join(would)})"
        return result

    def finish(self, code: int) -> None:
        self.env.exit_code = ExitCode(code)

    def render(self, outcome: JobOutcome, redactor: Redactor) -> None:
        from opsctl.cli import render

        if self.view is not None:
            self.view.show(self.runtime, outcome, redactor.text)
        else:
            render.outcome(self.runtime, outcome)

    def run_job(
        self,
        job: str,
        summary_type: str,
        work: Callable[[JobContext], JobResult],
        *,
        mutating: bool = False,
        cooperative: bool = False,
        dry_run: bool = False,
        bookkeeping_optional: bool = False,
    ) -> None:
        """Run one job through the runner, render its outcome and set the exit code."""
        from opsctl.cli import render
        from opsctl.jobs.context import JobContext
        from opsctl.jobs.runner import JobSpec, execute

        emitter = self.emitter(job)
        dry = self.dry_run(dry_run)
        try:
            retention = self.settings.runs.retention_days
            bookkeeping = self._bookkeeping(dry)
            observers = [] if dry else self._observers(job, emitter)
        except OpsctlError as exc:
            self.finish(report_error(self.env, exc, job=job))
            return
        spec = JobSpec(job, summary_type, mutating=mutating, cooperative=cooperative,
                       dry_run=dry, history_retention=timedelta(days=retention),
                       bookkeeping_optional=bookkeeping_optional)
        ctx = JobContext(job, self.runtime, emitter, dry_run=dry,
                         progress=render.progress_factory(self.runtime))
        startup.work_begins()
        outcome = execute(spec, self.runtime, emitter, bookkeeping, lambda: work(ctx),
                          observers)
        self.render(outcome, emitter.redactor)
        self.close()
        self.finish(outcome.exit_code)

    def _observers(self, job: str, emitter: Emitter) -> list[RunObserver]:
        """Heartbeats and Prometheus, as configured; the runner tells them about the run."""
        from opsctl.adapters.observers.configured import observers_for

        def last_success(name: str) -> datetime | None:
            from opsctl.adapters.db.last_success import last_success_at

            # The run's own connection, whatever its mode: a SELECT needs no other.
            return last_success_at(self._db or self.database(), name)

        return observers_for(job, self.settings, host=self.runtime.host, emit=emitter.emit,
                             last_success=last_success)

    def _bookkeeping(self, dry_run: bool) -> RunBookkeeping:
        from opsctl.adapters.db.runs import DbBookkeeping

        return DbBookkeeping(self.database(read_only=dry_run))


def report_error(
    env: Environment, exc: OpsctlError, *, code: ExitCode | None = None, job: str | None = None
) -> int:
    """Report an error that happened outside a job run (usage, config, parse)."""
    from opsctl.cli import render
    from opsctl.events import Emitter

    session = env.session
    runtime = session.runtime if session else env.fallback_runtime()
    secrets = session.secrets() if session else []
    exit_code = code or exc.exit_code
    env.exit_code = exit_code  # settled: a late signal changes nothing now
    emitter = Emitter(runtime, job, secrets)
    message = emitter.redactor.text(exc.message)
    if session is not None and session.view is not None:
        runtime.stdout.write(session.view.error_line(exit_code, exc.kind, message) + "\n")
    elif runtime.output == "json":
        emitter.emit("error", message, level="error",
                     error={"kind": exc.kind, "message": message}, exit_code=int(exit_code))
    else:
        render.error_line(runtime, exc.kind, message)
    return int(exit_code)


def emit_result(session: Session, result: JobResult, job: str | None = None) -> None:
    """Report a command that is not a scheduled job (config, db init): same shapes, no
    history, no lock."""
    from opsctl.jobs.runner import JobOutcome

    emitter = session.emitter(job)
    session.finish(result.exit_code)  # settled before it is written
    emitter.emit(result.summary_type, result.message, level=result.level, **result.summary())
    session.render(JobOutcome(result.exit_code, result=result), emitter.redactor)


def guarded(session: Session, action: Callable[[], JobResult], job: str | None = None) -> None:
    """Run a non-job command, turning opsctl errors into one ``error`` event and its code."""
    startup.work_begins()
    try:
        result = action()
    except OpsctlError as exc:
        session.finish(ExitCode(report_error(session.env, exc, job=job)))
        return
    emit_result(session, result, job)
