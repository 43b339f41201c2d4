"""`vafa insights refresh`: analyse the shop's orders now and store the scores."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console

from vafa.commands.django_setup import setup

app = typer.Typer(help="Customer-base analysis of the shop's database.", no_args_is_help=True)


@app.command("refresh")
def refresh(
    as_of: str = typer.Option("", "--as-of", help="Observation end YYYY-MM-DD (default: the "
                              "last order)."),
) -> None:
    """Run the analysis on every order and replace the stored customer scores."""
    setup()
    from vafa.insights.services import insights_refresh

    console = Console(stderr=True)
    try:
        as_of_date = dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        typer.echo(f"error: --as-of: not a date (YYYY-MM-DD): {as_of!r}", err=True)
        raise typer.Exit(2) from None
    with console.status("analysing") as status:
        run = insights_refresh(as_of=as_of_date, triggered_by="cli",
                               progress=lambda step: status.update(f"analysing: {step}"))
    if run.status != run.Status.DONE:
        typer.echo(f"error: {run.error}", err=True)
        raise typer.Exit(1)
    console.print(f"analysed {run.customers:,} customers as of {run.as_of}")
