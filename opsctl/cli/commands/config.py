"""``opsctl config show|validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opsctl.cli import render
from opsctl.cli.session import Session, guarded
from opsctl.exit_codes import ExitCode
from opsctl.jobs.result import JobResult

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Show or validate the configuration.", no_args_is_help=True)


@app.command("show", epilog="\b\nExamples:\n  opsctl config show\n  opsctl --config /etc/opsctl/config.toml config show -o json")
def show(ctx: typer.Context) -> None:
    """Print the effective configuration (file, then environment), secrets redacted."""
    session = Session.of(ctx)

    def action() -> JobResult:
        from opsctl.settings import redacted

        return JobResult("config", "effective configuration", "ok", ExitCode.OK,
                         {"config_path": _path(session.config_path),
                          "config": redacted(session.settings)})

    guarded(session, action)


@app.command("validate", epilog="\b\nExamples:\n  opsctl config validate /etc/opsctl/config.toml\n  OPSCTL_DATABASE__URL=postgresql://db/app opsctl config validate")
def validate(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Config file. [default: the --config file]")] = None,
) -> None:
    """Check a config file; exit 0 when valid, 78 naming the key when not. For CI."""
    session = Session.of(ctx)
    target = path or session.config_path

    def action() -> JobResult:
        from opsctl.settings import load_settings
        from opsctl.settings.monitoring import textfile_dir_problem

        settings = load_settings(target, session.runtime.env)
        warnings = []
        textfile_dir = settings.prometheus.textfile_dir
        problem = textfile_dir_problem(textfile_dir) if textfile_dir else None
        if problem:
            warnings.append({"key": "prometheus.textfile_dir", "message": problem})
        message = f"configuration {_path(target)} is valid"
        if warnings:
            message += "; warning: " + "; ".join(f"{w['key']}: {w['message']}" for w in warnings)
        return JobResult("config_valid", message, "valid", ExitCode.OK,
                         {"config_path": _path(target), "warnings": warnings})

    guarded(session, action)


def _path(path: Path | None) -> str:
    return str(path) if path else "(defaults and environment)"


@render.register("config")
def _render_config(out: Console, result: JobResult) -> None:
    from rich.table import Table
    from rich.text import Text

    out.print(Text(f"configuration: {result.fields['config_path']}", style="bold"))
    table = Table(show_header=False, box=None, padding=(0, 2), pad_edge=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in _flatten(result.fields["config"]):
        table.add_row(Text(key), Text(render.plain(value)))
    out.print(table)


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
