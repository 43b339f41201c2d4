"""`vafa import {customers,products,orders,events} FILE`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Import customers, products, orders or events from a file.", no_args_is_help=True)
