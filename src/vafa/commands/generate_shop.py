"""`vafa generate-shop`: write a synthetic Iranian online shop as canonical CSVs."""

from __future__ import annotations

from pathlib import Path

import typer


def generate_shop(
    customers: int = typer.Option(5000, "--customers", min=1, help="Number of customers."),
    seed: int = typer.Option(1, "--seed", help="Random seed: same seed, same bytes."),
    out: Path = typer.Option(Path("var/shop"), "--out", help="Output directory."),
) -> None:
    """Generate a believable shop: customers, products, orders, order lines, events, tickets."""
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(1)
