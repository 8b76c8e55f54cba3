"""`opsctl runs` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="History of opsctl's own runs.", no_args_is_help=True)
