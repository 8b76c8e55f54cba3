"""`opsctl files` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Delete expired export files.", no_args_is_help=True)
