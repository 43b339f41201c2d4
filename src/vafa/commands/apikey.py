"""`vafa apikey create NAME` / `vafa apikey list` / `vafa apikey revoke PREFIX_OR_ID`."""

from __future__ import annotations

import typer

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="What the key is for, e.g. 'shop backend'."),
    role: str = typer.Option("owner", "--role", help="owner (the shop's backend: writes "
                             "everything), support, marketer or analyst (reads only)."),
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.core.errors import VafaError
    from vafa.core.services import apikey_create

    try:
        api_key, raw = apikey_create(name=name, role=role)
    except VafaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"Created API key #{api_key.pk} {api_key.name!r} ({api_key.prefix}…). Copy it now: it "
        "cannot be shown again.", err=True,
    )
    typer.echo(raw)


@app.command("list")
def list_keys() -> None:
    """List API keys (prefix, name, created, last used, revoked)."""
    from vafa.commands.django_setup import setup

    setup()
    from rich.console import Console
    from rich.table import Table

    from vafa.core.models import ApiKey

    table = Table("id", "prefix", "name", "role", "created", "last used", "status")
    for api_key in ApiKey.objects.exclude(prefix="system").order_by("id"):
        table.add_row(
            str(api_key.pk), api_key.prefix, api_key.name, api_key.role,
            f"{api_key.created_at:%Y-%m-%d %H:%M}",
            f"{api_key.last_used_at:%Y-%m-%d %H:%M}" if api_key.last_used_at else "never",
            "active" if api_key.is_active else f"revoked {api_key.revoked_at:%Y-%m-%d}",
        )
    Console().print(table)


@app.command("revoke")
def revoke(prefix_or_id: str = typer.Argument(..., help="The key's id or prefix (vafa_…).")) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    from vafa.commands.django_setup import setup

    setup()
    from vafa.core.errors import VafaError
    from vafa.core.selectors import apikey_find
    from vafa.core.services import apikey_revoke

    try:
        api_key = apikey_revoke(api_key=apikey_find(prefix_or_id=prefix_or_id))
    except VafaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Revoked API key #{api_key.pk} {api_key.name!r} ({api_key.prefix}…).")
