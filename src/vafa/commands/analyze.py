"""`vafa analyze ORDERS.csv`: customer-base analysis of a file, no database needed."""

from __future__ import annotations

from pathlib import Path

import typer


def analyze(
    orders: Path = typer.Argument(..., help="Transactions file (CSV, or CDNOW's whitespace file)."),
) -> None:
    """Analyse a transactions file: KPIs, RFM, cohorts and CLV, as a report and JSON."""
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(1)
