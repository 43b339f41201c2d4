"""`vafa apikey create NAME` / `vafa apikey revoke PREFIX` / `vafa apikey list`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
