"""`vafa serve`, `vafa worker` and `vafa manage`: run the web server, the task worker, Django."""

from __future__ import annotations

import sys

import typer

from vafa.commands.django_setup import setup


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workers: int = typer.Option(2, "--workers", min=1, help="Gunicorn worker processes."),
    threads: int = typer.Option(
        4, "--threads", min=1,
        help="Requests each worker serves at once (1 for an API-only server: see the loyalty "
        "benchmark).",
    ),
    migrate: bool = typer.Option(True, "--migrate/--no-migrate", help="Apply migrations first."),
) -> None:
    """Run the web server (gunicorn) with the admin, the API and the pages."""
    setup()
    from django.core.management import call_command

    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    typer.echo(f"Vafa is serving on http://{host}:{port}/  (admin: /admin/, API docs: /api/v1/docs)")
    run_gunicorn(host, port, workers, threads)


def run_gunicorn(host: str, port: int, workers: int, threads: int = 4) -> None:
    """gunicorn's threaded workers: connections are kept alive between requests (a shop's
    backend or a proxy calling the API saves a connection set-up per call; `sync` workers
    close every one), and a connection that has sent nothing yet (a browser's preconnect)
    holds one thread for at most a few seconds, not the whole worker."""
    from gunicorn.app.wsgiapp import WSGIApplication

    sys.argv = [
        "gunicorn", "vafa.wsgi:application", "--bind", f"{host}:{port}", "--workers", str(workers),
        "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "5",
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
