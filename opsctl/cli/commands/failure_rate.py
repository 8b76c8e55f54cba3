"""`opsctl failure-rate` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Alert on the export failure rate.", no_args_is_help=True)
