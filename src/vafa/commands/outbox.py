"""`vafa outbox flush` / `status`: send what is due now, or count messages by status."""

from __future__ import annotations

import typer

app = typer.Typer(help="Send and inspect the message outbox.", no_args_is_help=True)


@app.command()
def flush(
    limit: int = typer.Option(None, "--limit", min=1, help="Send at most this many messages."),
) -> None:
    """Send every message that is due now, then exit (the worker does this every minute)."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.messaging.outbox import outbox_flush

    result = outbox_flush(limit=limit)
    counts = {k: v for k, v in result.as_dict().items() if v}
    summary = ", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing was due"
    typer.echo(f"outbox flush: {summary}")


@app.command()
def status(source: str = typer.Option(None, help="Only this flow or campaign.")) -> None:
    """How many messages are in each status."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.messaging.selectors import status_counts

    counts = status_counts(source=source)
    if not counts:
        typer.echo("the outbox is empty")
    for name, count in sorted(counts.items()):
        typer.echo(f"{name}\t{count}")
