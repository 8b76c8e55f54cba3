"""The Typer application: global options and the command groups, nothing else."""

from __future__ import annotations

import importlib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from typer import _click as click  # typer vendors click
from typer._click.shell_completion import CompletionItem
from typer._click.utils import make_default_short_help
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command, get_group

from opsctl import __version__
from opsctl.cli.session import Environment, Session

# Command groups, imported only when used: `opsctl --version`, `opsctl --help` and a cron
# run of one job never pay for the others' imports. Each name maps to its module and the
# summary `opsctl --help` lists for it: the module's own help, kept equal by a test, so
# listing the commands imports none of them.
GROUPS = {
    "metrics": ("metrics", "Aggregate export metrics."),
    "failure-rate": ("failure_rate", "Alert on the export failure rate."),
    "files": ("files", "Delete expired export files."),
    "logs": ("logs", "Statistics and retention of the export log table."),
    "health": ("health", "Probe the health of the export system."),
    "runs": ("runs", "History of opsctl's own runs."),
    "db": ("db", "opsctl's own tables."),
    "demo": ("demo", "Seed realistic demo data."),
    "config": ("config", "Show or validate the configuration."),
    "schedule": ("schedule", "When the jobs run: the schedule section of the configuration, "
                 "checked and deployed."),
    "status": ("status", "One screen for on-call: per job the last run and whether it is "
               "overdue, open alerts, the failure rate of the last hour and the cleanups "
               "waiting."),
}
# Modules whose app is one command rather than a group of them.
SINGLE_COMMANDS = frozenset({"status"})


class LazyGroup(TyperGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(GROUPS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries above, as click lays it out, with no
        command module imported."""
        limit = formatter.width - 6 - max(len(name) for name in GROUPS)
        rows = [(name, make_default_short_help(summary, limit))
                for name, (_, summary) in GROUPS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names from the same summaries: ``opsctl <TAB>`` imports no command
        module either; the options are completed as click does."""
        names = [CompletionItem(name, help=make_default_short_help(summary))
                 for name, (_, summary) in GROUPS.items() if name.startswith(incomplete)]
        return names + click.Command.shell_complete(self, ctx, incomplete)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module_name, _ = GROUPS[cmd_name]
        module = importlib.import_module(f"opsctl.cli.commands.{module_name}")
        if cmd_name in SINGLE_COMMANDS:
            command = get_command(module.app)
            command.name = cmd_name
            _for_people(command)
            return command
        group = get_group(module.app)
        group.name = cmd_name
        # A group without its subcommand is a usage error (64) like any other; printing the
        # group's help instead would put text on stdout in JSON mode.
        group.no_args_is_help = False
        group.rich_markup_mode = None
        for command in group.commands.values():
            _for_people(command)
        return group


def _for_people(command: click.Command) -> None:
    plain_help(command)
    if not any(param.name == "late_output" for param in command.params):
        command.params.append(_late_output_option())


def plain_help(command: click.Command) -> None:
    """Help as plain text: brackets in help texts (``[[health.checks]]``, ``[source]``)
    are not read as rich markup and lost, docstrings are reflowed instead of keeping the
    source's line breaks, and flags carry no ``<bool>`` / ``<int range>`` noise."""
    if isinstance(command, TyperCommand | TyperGroup):
        command.rich_markup_mode = None
    for param in command.params:
        # The range a flag accepts is checked with a clear message; in the help it is noise.
        setattr(param, "_get_number_range_help_str", lambda: None)  # noqa: B010


def _late_output_option() -> click.Parameter:
    """``-o/--output`` after the command too (``opsctl logs stats -o json``), the way
    kubectl and gh take it; it overrides one given before the command."""
    probe = typer.Typer()

    @probe.command()
    def _output(
        late_output: Annotated[OutputMode | None, typer.Option(
            "--output", "-o", help="json or text (also accepted before the command).")] = None,
    ) -> None:
        pass

    param = get_command(probe).params[0]
    param.expose_value = False
    param.callback = _apply_late_output
    return param


def _apply_late_output(ctx: click.Context, _param: click.Parameter, value: object) -> None:
    if isinstance(value, OutputMode):
        env = ctx.find_root().obj
        if isinstance(env, Environment) and env.session is not None:
            env.session.set_output(value.value)


class OutputMode(StrEnum):
    auto = "auto"
    json = "json"
    text = "text"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


app = typer.Typer(
    cls=LazyGroup,
    name="opsctl",
    help="Scheduled upkeep for the data-export service: metrics, failure-rate alerts, "
    "file and log cleanup, health probes.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(ctx: typer.Context, value: bool) -> None:
    if value:
        env = ctx.obj
        stream = env.stdout if isinstance(env, Environment) else None
        typer.echo(f"opsctl {__version__}", file=stream)
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    config_path: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH",
                     help="TOML config file (default: $OPSCTL_CONFIG, then "
                     "~/.config/opsctl/config.toml if it exists)."),
    ] = None,
    output: Annotated[
        OutputMode | None,
        typer.Option("--output", "-o", help="json lines for machines, text for people; auto picks "
                     "json when stdout is not a terminal. (env: OPSCTL_OUTPUT)"),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", help="Diagnostics on stderr; debug also shows tracebacks. "
                     "(env: OPSCTL_LOG_LEVEL)"),
    ] = None,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours (NO_COLOR is honoured too).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    env = ctx.obj
    assert isinstance(env, Environment)
    if config_path is None and env.environ.get("OPSCTL_CONFIG"):
        config_path = Path(env.environ["OPSCTL_CONFIG"])
    Session.start(
        env,
        config=config_path,
        output=_env_choice(output, env, "OPSCTL_OUTPUT", OutputMode, OutputMode.auto),
        log_level=_env_choice(log_level, env, "OPSCTL_LOG_LEVEL", LogLevel, LogLevel.warning),
        no_color=no_color,
    )


E = TypeVar("E", bound=StrEnum)


def _env_choice(value: E | None, env: Environment, var: str, enum: type[E], default: E) -> str:
    if value is not None:
        return value.value
    raw = env.environ.get(var, "").strip().lower()
    if not raw:
        return default.value
    try:
        return enum(raw).value
    except ValueError:
        raise typer.BadParameter(
            f"{var}={raw!r} is not one of {', '.join(m.value for m in enum)}"
        ) from None
