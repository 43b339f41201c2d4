"""`vafa demo`: migrate, generate and import a synthetic shop, create an admin, serve."""

from __future__ import annotations

import typer


def demo(
    customers: int = typer.Option(5000, "--customers", min=10, help="Customers in the demo shop."),
    seed: int = typer.Option(1, "--seed", help="Random seed of the synthetic shop."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the server after set-up."),
) -> None:
    """Set up a demo shop and serve it on http://127.0.0.1:8000/."""
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(1)
