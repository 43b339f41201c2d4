"""`vafa demo`: migrate, generate and import a synthetic shop, create an admin, serve.

Running it again reuses what exists: the generated files, the imported data (imports are upserts,
so a second import finds every row unchanged) and the admin account.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import typer
from rich.console import Console

from vafa.commands.django_setup import setup

# Import order matters: orders need their customers, lines need orders and products.
DEMO_FILES = [
    ("customers", "customers.csv"),
    ("products", "products.csv"),
    ("orders", "orders.csv"),
    ("order-lines", "order_lines.csv"),
    ("events", "events.csv"),
    ("tickets", "tickets.csv"),
]
ADMIN_USERNAME = "admin"


def demo(
    customers: int = typer.Option(5000, "--customers", min=10, help="Customers in the demo shop."),
    seed: int = typer.Option(1, "--seed", help="Random seed of the synthetic shop."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the server after set-up."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int = typer.Option(8000, "--port", help="Port to serve on."),
) -> None:
    """Set up a demo shop (5,000 customers by default) and serve it on http://127.0.0.1:8000/."""
    console = Console()
    setup()
    from django.conf import settings
    from django.core.management import call_command

    started = time.monotonic()
    console.print("[bold]1/5[/bold] database: applying migrations")
    call_command("migrate", interactive=False, verbosity=0)

    shop_dir = Path(settings.VAFA_HOME) / f"demo-shop-{customers}-{seed}"
    console.print(f"[bold]2/5[/bold] synthetic shop: {shop_dir}")
    _generate(shop_dir, customers=customers, seed=seed, console=console)

    console.print("[bold]3/5[/bold] importing the shop")
    _import(shop_dir, console=console)

    console.print("[bold]4/5[/bold] analysing customers: segments, churn, lifetime value")
    _analyse(console)

    console.print("[bold]5/5[/bold] admin account")
    password = _ensure_admin()
    if password:
        console.print(f"  user [bold]{ADMIN_USERNAME}[/bold], password [bold]{password}[/bold] "
                      "(shown once: write it down)")
    else:
        console.print(f"  user [bold]{ADMIN_USERNAME}[/bold] exists; its password was printed on "
                      "the first run (reset: vafa manage changepassword admin)")
    console.print(f"ready in {time.monotonic() - started:.1f}s")
    if serve:
        from vafa.commands.server import serve as serve_command

        console.print(f"open [bold]http://{host}:{port}/dashboard/[/bold] (log in as {ADMIN_USERNAME}); "
                      f"the full analysis report is at [bold]http://{host}:{port}/insights/report/"
                      "[/bold], the admin at /admin/")
        serve_command(host=host, port=port, workers=2, threads=4, migrate=False)


def _generate(shop_dir: Path, *, customers: int, seed: int, console: Console) -> None:
    done = shop_dir / ".complete"
    if done.exists():
        console.print("  reusing the files generated earlier")
        return
    from vafa.customers.synthetic import generate_shop

    summary = generate_shop(shop_dir, customers=customers, seed=seed)
    done.write_text(repr(summary))


def _import(shop_dir: Path, *, console: Console) -> None:
    from vafa.customers.importers import import_file

    # Imports are upserts: a second run finds every row unchanged and writes nothing.
    for kind, name in DEMO_FILES:
        result = import_file(kind=kind, path=shop_dir / name)
        console.print(f"  {kind}: {result}")


def _analyse(console: Console) -> None:
    from vafa.insights.services import insights_refresh

    with console.status("analysing") as status:
        run = insights_refresh(triggered_by="demo",
                               progress=lambda step: status.update(f"analysing: {step}"))
    if run.status != run.Status.DONE:
        console.print(f"[red]analysis failed:[/red] {run.error}")
        raise typer.Exit(1)
    summary = run.summary
    kpis = summary.get("kpis") or {}
    vip = summary.get("vip") or {}
    console.print(
        f"  {summary['customers']:,} customers, {summary['transactions']:,} purchases; "
        f"retention {_pct(kpis.get('retention_rate'))}, churn {_pct(kpis.get('churn_rate'))} "
        f"({kpis.get('period')} to {summary['as_of']}); {vip.get('count', 0)} VIP customers"
    )
    from vafa.customers.models import Order
    from vafa.customers.recommendations import recommendations_refresh

    # the synthetic shop's history ends on its own date: recommend as of its last order
    last = Order.objects.order_by("-placed_at").values_list("placed_at", flat=True).first()
    refresh = recommendations_refresh(now=last)
    console.print(f"  product recommendations: {refresh.pairs:,} similar pairs for "
                  f"{refresh.products:,} products")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def _ensure_admin() -> str | None:
    """Create the demo superuser if missing; return its new password (None if it existed)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if user_model.objects.filter(username=ADMIN_USERNAME).exists():
        return None
    password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
    return password
