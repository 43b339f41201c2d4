"""Drive the loyalty earn/redeem API on PostgreSQL behind gunicorn and time it.

Starts a throwaway PostgreSQL cluster (Debian's `initdb`/`pg_ctl`, as in the tests; note it runs
with `fsync=off`, so the numbers are for CPU and locking, not for the disk), migrates it, creates
`--members` members with 1,000 points each, then serves the project with gunicorn (`gthread`
workers) plus one extra no-op Django view (`/bench/noop`, same middleware, no database) on the
same server. An asyncio client keeps `--clients` HTTP/1.1 keep-alive connections busy for
`--seconds`: first against the no-op, then against the writes, half
`POST /api/v1/members/{id}/adjustments` (+1 point) and half `POST …/redemptions` (1 point), each
with a fresh `Idempotency-Key` and a random member. It prints throughput and p50/p99 latency for
both, and checks the ledger afterwards (`ledger_reconcile` must find nothing).

    .venv/bin/python benchmarks/loyalty_bench.py                 # 200 clients, 20 s each
    .venv/bin/python benchmarks/loyalty_bench.py --clients 50 --seconds 5

Target (issue 5): at least 500 writes/s and p99 under 100 ms on 2 cores. The load generator runs
on the same 2 cores, so it takes part of the budget it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.services import postgres_server  # noqa: E402

SETTINGS = """\
from vafa.settings import *  # noqa: F403

ROOT_URLCONF = "bench_urls"
"""

URLS = """\
from django.http import JsonResponse
from django.urls import include, path


def noop(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/noop", noop), path("", include("vafa.urls"))]
"""

SEED = """\
import django, json, sys
django.setup()
from vafa.core.services import apikey_create
from vafa.customers.models import Customer
from vafa.loyalty.services import points_adjust

members = int(sys.argv[1])
Customer.objects.bulk_create(
    [Customer(external_id=f"m{i}") for i in range(members)], batch_size=1000
)
for customer in Customer.objects.all():
    points_adjust(customer=customer, points=1000, reason="bench seed", actor="bench",
                  idempotency_key="seed")
print(json.dumps({"key": apikey_create(name="bench")[1]}))
"""

CHECK = """\
import django, json
django.setup()
from vafa.loyalty.models import LedgerEntry
from vafa.loyalty.selectors import ledger_reconcile
print(json.dumps({"problems": len(ledger_reconcile()), "entries": LedgerEntry.objects.count()}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Request = tuple[str, str, bytes, dict[str, str]]


async def client(
    port: int, make: Callable[[], Request], stop_at: float, latencies: list[float],
    statuses: dict[int, int],
) -> None:
    """One keep-alive connection sending `make()`'s requests back to back until `stop_at`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            method, path, body, headers = make()
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head += f"Content-Length: {len(body)}\r\n\r\n"
            started = time.perf_counter()
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1]) if status_line else 0
            statuses[status] = statuses.get(status, 0) + 1
            if not status_line:
                break
    finally:
        writer.close()


async def drive(
    port: int, clients: int, seconds: float, make: Callable[[], Request]
) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(client(port, make, stop_at, latencies, statuses) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else None,
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1) if ordered else None,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    python = str(ROOT / ".venv" / "bin" / "python")
    with postgres_server() as pg, tempfile.TemporaryDirectory(prefix="vafa-loybench-") as tmp:
        home = Path(tmp)
        (home / "bench_settings.py").write_text(SETTINGS)
        (home / "bench_urls.py").write_text(URLS)
        env = {
            **os.environ,
            "VAFA_HOME": str(home),
            "DATABASE_URL": f"postgres://{pg.user}@{pg.host}:{pg.port}/{pg.dbname}",
            "DJANGO_SETTINGS_MODULE": "bench_settings",
            "PYTHONPATH": os.pathsep.join([str(home), str(ROOT / "src"), str(ROOT)]),
            "LOG_LEVEL": "ERROR",
        }
        subprocess.run(
            [python, "-m", "django", "migrate", "-v", "0"], check=True, env=env, cwd=home
        )
        seeded = subprocess.run(
            [python, "-c", SEED, str(args.members)], check=True, env=env, cwd=home,
            capture_output=True, text=True,
        )
        key = json.loads(seeded.stdout.strip().splitlines()[-1])["key"]
        port = free_port()
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "vafa.wsgi:application", "-b", f"127.0.0.1:{port}",
             "-k", "gthread", "--workers", str(args.workers), "--threads", str(args.threads),
             "--keep-alive", "30", "--backlog", "2048", "--log-level", "error"],
            env=env, cwd=home,
        )
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            auth = {"Authorization": f"Bearer {key}"}

            def noop() -> Request:
                return "GET", "/bench/noop", b"", {}

            def write() -> Request:
                member = f"m{random.randrange(args.members)}"
                headers = {**auth, "Idempotency-Key": uuid.uuid4().hex,
                           "Content-Type": "application/json"}
                if random.random() < 0.5:
                    body = {"points": 1, "reason": "bench"}
                    return "POST", f"/api/v1/members/{member}/adjustments", \
                        json.dumps(body).encode(), headers
                return "POST", f"/api/v1/members/{member}/redemptions", \
                    json.dumps({"points": 1}).encode(), headers

            asyncio.run(drive(port, min(args.clients, 20), 2.0, noop))  # warm the workers
            results = {
                "noop": asyncio.run(drive(port, args.clients, args.seconds, noop)),
                "writes": asyncio.run(drive(port, args.clients, args.seconds, write)),
            }
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        checked = subprocess.run(
            [python, "-c", CHECK], check=True, env=env, cwd=home, capture_output=True, text=True
        )
        results["ledger"] = json.loads(checked.stdout.strip().splitlines()[-1])
        results["setup"] = {
            "clients": args.clients, "seconds": args.seconds, "members": args.members,
            "gunicorn": f"gthread {args.workers}x{args.threads}", "cpus": os.cpu_count(),
        }
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
