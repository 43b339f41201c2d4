"""`vafa loyalty reconcile` / `expire` / `tiers`: check and maintain the points ledger."""

from __future__ import annotations

import typer

app = typer.Typer(help="Check and maintain the loyalty points ledger.", no_args_is_help=True)


@app.command()
def reconcile() -> None:
    """Prove every member's cached balance and debt equal the ledger; exit 1 listing mismatches."""
    from vafa.commands.django_setup import setup

    setup()
    from rich.console import Console
    from rich.table import Table

    from vafa.loyalty.models import Member
    from vafa.loyalty.selectors import ledger_reconcile

    console = Console()
    problems = ledger_reconcile()
    if not problems:
        console.print(f"OK: {Member.objects.count()} member(s), cached balances equal the ledger.")
        return
    table = Table("customer", "check", "ledger says", "found")
    for problem in problems:
        table.add_row(problem.customer, problem.check, str(problem.expected), str(problem.actual))
    console.print(table)
    console.print(f"{len(problems)} mismatch(es)", style="bold red")
    raise typer.Exit(code=1)


@app.command()
def expire() -> None:
    """Book the expiry of every lot whose time has come (the worker does this hourly)."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.loyalty.services import points_expire

    run = points_expire()
    typer.echo(f"{run.points} point(s) expired in {run.lots} lot(s) of {run.members} member(s).")


@app.command()
def tiers() -> None:
    """Recalculate every member's tier (the worker does this nightly)."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.loyalty.services import tiers_recalculate_all

    typer.echo(f"{tiers_recalculate_all()} member(s) changed tier.")


@app.command()
def birthdays() -> None:
    """Credit today's birthday bonuses (the worker does this hourly; once a year each)."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.loyalty.services import birthdays_award

    typer.echo(f"{birthdays_award()} member(s) have their birthday bonus for today.")
