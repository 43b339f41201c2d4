"""`vafa import {customers,products,orders,order-lines,events,tickets} FILE`.

All or nothing: a file with any bad row writes nothing, prints each problem to stderr as
`FILE:LINE: field: reason` (the first 50, then how many more) and exits with code 2.
Re-importing a file changes nothing (rows are upserted by their external id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Import customers, products, orders, order lines, events or tickets from a file.",
    no_args_is_help=True,
)

EXIT_REJECTED = 2

FORMAT_HELP = "csv (canonical, default), woocommerce (REST API JSON) or shopify (JSON, customer CSV)."


def _import(
    entity: str,
    file: Path,
    format: str,
    dry_run: bool,
    calendar: str,
    timezone: str | None,
    currency: str | None,
    notify: bool = False,
) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from vafa.commands.django_setup import setup

    setup()
    from vafa.core.errors import ImportRejected, VafaError
    from vafa.customers import services
    from vafa.customers.importers.sources import Source

    stderr = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TextColumn("{task.fields[rows]:,} rows"), TimeRemainingColumn(),
        console=stderr, transient=True, disable=not stderr.is_terminal,
    )
    task = progress.add_task(file.name, total=None, rows=0)

    def on_progress(source: Source, rows: int) -> None:
        done, total = source.position()
        progress.update(task, completed=done, total=total or None, rows=rows)

    try:
        with progress:
            result = services.records_import(
                entity=entity, path=file, format=format, dry_run=dry_run, calendar=calendar,
                timezone=timezone, currency=currency, on_progress=on_progress, notify=notify,
            )
    except ImportRejected as exc:
        for error in exc.errors:
            typer.echo(error.render(str(file)), err=True)
        if exc.total > len(exc.errors):
            typer.echo(f"… and {exc.total - len(exc.errors)} more errors", err=True)
        typer.echo(f"{file}: {exc.total} error(s); nothing was imported", err=True)
        raise typer.Exit(EXIT_REJECTED) from None
    except (VafaError, ValueError) as exc:
        typer.echo(f"{file}: {exc}", err=True)
        raise typer.Exit(EXIT_REJECTED) from None
    _print_result(result, file)


def _print_result(result: Any, file: Path) -> None:
    verb = "would be" if result.dry_run else "were"
    for message in result.messages:
        typer.echo(f"{file}: note: {message}", err=True)
    typer.echo(
        f"{file} ({result.entity.replace('_', ' ')}): {result.rows:,} rows: "
        f"{result.created:,} created, {result.updated:,} updated, "
        f"{result.unchanged:,} unchanged ({result.seconds:.1f} s)"
    )
    if result.duplicates:
        typer.echo(f"  {result.duplicates:,} rows repeated an id already in the file (last kept)")
    for note, count in result.notes.items():
        typer.echo(f"  {note}: {count:,}")
    if result.dry_run:
        typer.echo(f"dry run: nothing {verb} written")


def _command(entity: str, help_text: str) -> None:
    def command(
        file: Path = typer.Argument(
            ..., exists=True, dir_okay=False, readable=True, help="The file to import."
        ),
        format: str = typer.Option("csv", "--format", "-f", help=FORMAT_HELP),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Check every row and report what would change; write nothing."
        ),
        calendar: str = typer.Option(
            "gregorian", "--calendar", help="Calendar of dates in the file: gregorian or jalali."
        ),
        timezone: str | None = typer.Option(
            None, "--timezone", help="Zone of timestamps without an offset (default: the shop's)."
        ),
        currency: str | None = typer.Option(
            None, "--currency", help="Currency of amounts without one (default: the shop's)."
        ),
        notify: bool = typer.Option(
            False, "--notify", help="React to what is new, as the API does: points for orders, "
            "welcome, thank-you and shipping messages. Off by default, so importing history "
            "sends nothing.",
        ),
    ) -> None:
        _import(entity, file, format, dry_run, calendar, timezone, currency, notify)

    command.__doc__ = help_text
    app.command(entity.replace("_", "-"))(command)


_command("customers", "Import customers (and their email/SMS consent).")
_command("products", "Import products (categories are created by name).")
_command("orders", "Import orders; their customers must be imported first.")
_command("order_lines", "Import order lines; their orders and products must exist.")
_command("events", "Import behaviour events; their customers must exist.")
_command("tickets", "Import support tickets; their customers must exist.")
