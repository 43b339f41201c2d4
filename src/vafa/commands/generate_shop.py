"""`vafa generate-shop`: write a synthetic Iranian online shop as canonical CSVs."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import typer


def generate_shop(
    customers: int = typer.Option(
        5000, "--customers", min=1, max=10_000_000, help="Number of customers."
    ),
    seed: int = typer.Option(1, "--seed", min=0, help="Random seed: same seed, same bytes."),
    out: Path = typer.Option(Path("var/shop"), "--out", help="Output directory."),
    end: str = typer.Option(
        "2026-09-30",
        "--end",
        help="Last day of the two-year window (YYYY-MM-DD, Tehran time). Fixed by default so "
        "that output never depends on today's date.",
    ),
) -> None:
    """Generate a believable shop: customers, products, orders, order lines, events, tickets,
    and the ground truth of each customer's latent purchase rate and dropout."""
    from rich.console import Console
    from rich.table import Table

    from vafa.customers import synthetic

    try:
        last_day = date.fromisoformat(end)
    except ValueError as exc:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {end!r}", param_hint="--end") from exc
    started = time.perf_counter()
    summary = synthetic.generate_shop(out, customers=customers, seed=seed, end=last_day)
    elapsed = time.perf_counter() - started

    table = Table(title=f"Synthetic shop {summary.start} → {summary.end}, seed {seed}")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, path in summary.paths.items():
        table.add_row(path.name, f"{summary.counts[name]:,}")
    console = Console()
    console.print(table)
    console.print(f"written to {summary.out_dir} in {elapsed:.1f}s", soft_wrap=True)
