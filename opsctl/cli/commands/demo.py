"""`opsctl demo` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Seed realistic demo data.", no_args_is_help=True)
