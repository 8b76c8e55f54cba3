"""`opsctl health` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Probe the health of the export system.", no_args_is_help=True)
