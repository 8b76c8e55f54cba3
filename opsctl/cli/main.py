"""The entry point: argv in, exit code out. The only place the process exits.

Click's own conventions (exit 2 for usage errors, tracebacks for the unexpected) are
replaced here with the contract's: usage errors exit 64, opsctl errors exit with their own
code after an ``error`` event, and nothing ever ends in a traceback unless asked for.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import Any, TextIO

from typer import Abort
from typer._click import exceptions as click_exceptions  # typer vendors click
from typer.main import get_command

from opsctl.cli import startup
from opsctl.cli.app import app
from opsctl.cli.session import Environment, report_error
from opsctl.cli.streams import SIGPIPE_EXIT, broken, guard
from opsctl.errors import Interrupted, OpsctlError, UsageError
from opsctl.exit_codes import ExitCode
from opsctl.runtime import process_env


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    restore_signals: bool = True,
) -> int:
    """Run one command; its exit code. ``restore_signals=False`` (the real process) leaves
    SIGTERM and SIGINT ignored on return instead of restoring their handlers: the outcome
    is written by then, and a signal's default action would kill the process with a code
    other than the one its summary states."""
    env = Environment(
        environ=dict(process_env() if environ is None else environ),
        stdout=guard(stdout or sys.stdout),
        stderr=guard(stderr or sys.stderr),
    )
    args = list(sys.argv[1:] if argv is None else argv)
    # Help and usage text that click prints on its own goes to sys.stdout/stderr: guard
    # those too when they are the streams of this run.
    swapped = stdout is None and stderr is None
    saved = sys.stdout, sys.stderr
    if swapped:
        sys.stdout, sys.stderr = env.stdout, env.stderr
    try:
        code = _dispatch(env, args, restore_signals)
    finally:
        if swapped:
            sys.stdout, sys.stderr = saved
    if broken(env.stdout, env.stderr):
        return SIGPIPE_EXIT  # the reader went away: the shell's code for SIGPIPE, no message
    return code


def _dispatch(env: Environment, args: list[str], restore_signals: bool) -> int:
    command = get_command(app)
    # Until a job installs its own handlers, a signal still ends in one error event and
    # 143/130, not a silent death while imports or the config load.
    previous = _install_early_signal_handlers(env)
    try:
        returned = command.main(args=args, prog_name="opsctl", standalone_mode=False, obj=env)
    except click_exceptions.UsageError as exc:
        return report_error(env, UsageError(_usage_message(exc)), job=_job_of(exc))
    except Abort:
        return report_error(env, OpsctlError("aborted"), code=ExitCode.SIGINT)
    except click_exceptions.ClickException as exc:
        return report_error(env, UsageError(exc.format_message()))
    except OpsctlError as exc:
        return report_error(env, exc)
    except KeyboardInterrupt:
        return report_error(env, OpsctlError("interrupted"), code=ExitCode.SIGINT)
    except Exception as exc:
        if env.debug:
            env.stderr.write(traceback.format_exc())
        return report_error(env, OpsctlError(f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        if env.session is not None:
            env.session.close()
        if restore_signals:
            _restore_signal_handlers(previous)
        else:
            _restore_signal_handlers(dict.fromkeys(previous, signal.SIG_IGN))
    if isinstance(returned, int) and env.exit_code is None:
        return returned  # typer.Exit from --help, --version or Ctrl-C while parsing
    return int(env.exit_code or ExitCode.OK)


def _job_of(exc: click_exceptions.UsageError) -> str | None:
    """The job a usage error belongs to (``opsctl metrics aggregate`` → metrics.aggregate)."""
    if exc.ctx is None:
        return None
    from opsctl.domain.job_names import JOB_NAMES

    words = exc.ctx.command_path.split()[1:]
    job = ".".join(words)
    return job if job in JOB_NAMES else None


def _install_early_signal_handlers(env: Environment) -> dict[int, Any]:
    def interrupt(signum: int, _frame: FrameType | None) -> None:
        if env.settled:
            return  # the outcome is written or being written: it stands
        code = ExitCode.SIGTERM if signum == signal.SIGTERM else ExitCode.SIGINT
        raise Interrupted(f"interrupted by signal outside the job (exit {code.value})", code)

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _usage_message(exc: click_exceptions.UsageError) -> str:
    if isinstance(exc, click_exceptions.NoArgsIsHelpError):
        # The help was already shown; the error only says why the exit code is 64.
        return "missing command"
    message = exc.format_message()
    if exc.ctx is not None:
        return f"{message} (see '{exc.ctx.command_path} --help')"
    return message


def run() -> None:
    """Console-script entry point."""
    startup.defer_collection()
    sys.exit(main(restore_signals=False))
