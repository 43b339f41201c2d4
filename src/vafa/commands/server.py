"""`vafa serve`, `vafa worker` and `vafa manage`: run the web server, the task worker, Django."""

from __future__ import annotations

import sys

import typer

from vafa.commands.django_setup import setup


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(2, "--workers", min=1, help="Gunicorn worker processes."),
    migrate: bool = typer.Option(True, "--migrate/--no-migrate", help="Apply migrations first."),
) -> None:
    """Run the web server (gunicorn) with the admin, the API and the pages."""
    setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    typer.echo(f"Vafa is serving on http://{host}:{port}/  (admin: /admin/, API docs: /api/v1/docs)")
    run_gunicorn(host, port, workers)


def run_gunicorn(host: str, port: int, workers: int) -> None:
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = [
        "gunicorn", "vafa.wsgi:application", "--bind", f"{host}:{port}", "--workers", str(workers),
        "--access-logfile", "-", "--timeout", "120",
    ]
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()


def worker(
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Worker threads."),
) -> None:
    """Run the background task worker (huey consumer with its periodic tasks)."""
    setup()
    from django.core.management import call_command

    call_command("run_huey", workers=workers, worker_type="thread")


def manage(ctx: typer.Context) -> None:
    """Run a Django management command: `vafa manage migrate`, `vafa manage createsuperuser`, …"""
    setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["vafa manage", *ctx.args])
