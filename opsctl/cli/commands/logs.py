"""`opsctl logs` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Statistics and retention of the export log table.", no_args_is_help=True)
