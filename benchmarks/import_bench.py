"""Time `vafa import orders` on a million rows against a raw bulk load of the same rows.

Generates a canonical customers CSV and orders CSV (fixed seed) in a temporary folder, then for
each database runs two interpreters, each on a freshly migrated database holding the customers:

- **importer**: `vafa.customers.services.orders_import` on the CSV: streaming read, validation,
  customer resolution, upsert, all in one transaction; timed end to end;
- **baseline**: the same rows already parsed into tuples (customer ids resolved, values adapted)
  before the clock starts, then only `executemany(INSERT …)` (SQLite) or `COPY` (PostgreSQL)
  into the same `customers_order` table with the same indexes and constraints, and commit.

PostgreSQL is used when `--pg-url` names a server (two scratch databases are created and dropped
there) or when a temporary cluster can be started with Debian's `initdb`/`pg_ctl` (as the
`postgres` user when run as root). Each run reports its own peak RSS (`ru_maxrss`, which covers
the whole interpreter: Django, migrations and the customers import included).

    .venv/bin/python benchmarks/import_bench.py                    # 1,000,000 orders
    .venv/bin/python benchmarks/import_bench.py --rows 200000 --no-postgres

Target (issue 3): the importer at least half the baseline's rows/s; peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

SEED = 20250320
PG_BIN = Path("/usr/lib/postgresql/15/bin")
STATUSES = ["paid"] * 85 + ["refunded"] * 4 + ["partially_refunded"] * 2 + ["cancelled"] * 6 + [
    "pending"
] * 3
CHANNELS = ["web", "app", "instagram", "telegram"]


# --------------------------------------------------------------------------------------------
# Data


def generate(folder: Path, rows: int, customers: int) -> tuple[Path, Path]:
    """Write customers.csv and orders.csv; orders reference random existing customers."""
    rng = random.Random(SEED)
    customers_csv = folder / "customers.csv"
    orders_csv = folder / "orders.csv"
    start = datetime(2023, 1, 1, tzinfo=UTC)
    with customers_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "email", "first_name", "signup_at"])
        for i in range(1, customers + 1):
            signup = start + timedelta(seconds=rng.randrange(0, 365 * 86_400))
            writer.writerow([f"C{i:07d}", f"c{i}@shop.example", "سارا",
                             signup.strftime("%Y-%m-%dT%H:%M:%SZ")])
    with orders_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_id", "customer_id", "placed_at", "status", "total", "currency",
                         "discount", "shipping", "channel"])
        for i in range(1, rows + 1):
            placed = start + timedelta(seconds=rng.randrange(0, 2 * 365 * 86_400))
            total = rng.randrange(50, 20_000) * 1000
            writer.writerow([
                f"O{i:09d}", f"C{rng.randrange(1, customers + 1):07d}",
                placed.strftime("%Y-%m-%dT%H:%M:%SZ"), rng.choice(STATUSES), total, "IRT",
                rng.choice((0, 0, 0, 50_000, 100_000)), rng.choice((0, 30_000, 45_000)),
                rng.choice(CHANNELS),
            ])
    return customers_csv, orders_csv


# --------------------------------------------------------------------------------------------
# Children (one interpreter per measured run)


def _django(home: Path, database_url: str | None) -> None:
    os.environ["VAFA_HOME"] = str(home)
    os.environ["DJANGO_SETTINGS_MODULE"] = "vafa.settings"
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_importer(home: Path, database_url: str | None, customers: Path, orders: Path) -> dict:
    _django(home, database_url)
    from vafa.customers import services

    services.customers_import(path=customers)
    started = time.perf_counter()
    result = services.orders_import(path=orders)
    seconds = time.perf_counter() - started
    assert result.created == result.rows, result
    return {"rows": result.rows, "seconds": seconds, "peak_mb": _peak_mb()}


def _parsed_rows(orders: Path, vendor: str) -> list[tuple[Any, ...]]:
    """The orders as the database stores them, parsed before the clock starts."""
    from vafa.customers.models import Customer

    pks = dict(Customer.objects.values_list("external_id", "id"))
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    with orders.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for r in reader:
            placed = datetime.fromisoformat(r["placed_at"])
            total = Decimal(r["total"])
            refunded = total if r["status"] == "refunded" else Decimal(0)
            values: tuple[Any, ...] = (
                r["order_id"], pks[r["customer_id"]], placed, r["status"], total,
                Decimal(r["discount"]), Decimal(r["shipping"]), refunded, r["currency"],
                r["channel"], now, now,
            )
            if vendor == "sqlite":
                values = tuple(
                    v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
                    if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v
                    for v in values
                )
            rows.append(values)
    return rows


COLUMNS = ("external_id", "customer_id", "placed_at", "status", "total", "discount", "shipping",
           "refunded_amount", "currency", "channel", "created_at", "updated_at")


def child_baseline(home: Path, database_url: str | None, customers: Path, orders: Path) -> dict:
    _django(home, database_url)
    from django.db import connection

    from vafa.customers import services
    from vafa.customers.importers.writer import BULK_CACHE_KIB

    services.customers_import(path=customers)
    rows = _parsed_rows(orders, connection.vendor)
    columns = ", ".join(COLUMNS)
    connection.ensure_connection()
    raw = connection.connection
    started = time.perf_counter()
    if connection.vendor == "sqlite":
        cursor = raw.cursor()
        # The same page cache the importer uses (vafa.customers.importers.writer).
        cursor.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(
            f"INSERT INTO customers_order ({columns}) VALUES ({', '.join('?' for _ in COLUMNS)})",
            rows,
        )
        cursor.execute("COMMIT")
    else:
        with raw.transaction(), raw.cursor() as cursor, cursor.copy(
            f"COPY customers_order ({columns}) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "seconds": seconds, "peak_mb": _peak_mb()}


def run_child(kind: str, home: Path, database_url: str | None, customers: Path,
              orders: Path) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--child", kind, "--home", str(home),
               "--customers-csv", str(customers), "--orders-csv", str(orders)]
    if database_url:
        command += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# PostgreSQL


class TempCluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1 and a free port (initdb refuses root: when
    we are root, the server runs as the `postgres` user)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="vafa-pg-"))
        self.data = self.dir / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> str:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                  "-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                  "start")
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="order rows (1,000,000)")
    parser.add_argument("--customers", type=int, default=100_000, help="customers (100,000)")
    parser.add_argument("--pg-url", help="a PostgreSQL server to use (scratch databases)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--child", choices=["importer", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--customers-csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--orders-csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run = child_importer if args.child == "importer" else child_baseline
        print(json.dumps(run(args.home, args.database_url, args.customers_csv, args.orders_csv)))
        return

    results: list[tuple[str, str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="vafa-import-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        customers_csv, orders_csv = generate(folder, args.rows, args.customers)
        size = orders_csv.stat().st_size / 1e6
        print(f"generated {args.rows:,} orders ({size:.0f} MB) of {args.customers:,} customers "
              f"in {time.perf_counter() - started:.1f}s", flush=True)

        for kind in ("baseline", "importer"):
            results.append(("sqlite", kind, run_child(
                kind, folder / f"sqlite-{kind}", None, customers_csv, orders_csv)))
            print(f"sqlite {kind}: {results[-1][2]['seconds']:.1f}s", flush=True)

        cluster: TempCluster | None = None
        pg_url = args.pg_url
        if not pg_url and not args.no_postgres:
            if (PG_BIN / "initdb").exists():
                cluster = TempCluster()
                try:
                    pg_url = cluster.start()
                except (subprocess.CalledProcessError, OSError) as exc:
                    print(f"postgres skipped: could not start a cluster ({exc})")
                    cluster.stop()
                    cluster, pg_url = None, None
            else:
                print("postgres skipped: no --pg-url and no initdb")
        try:
            if pg_url and not args.no_postgres:
                for kind in ("baseline", "importer"):
                    name = f"vafa_bench_{kind}_{os.getpid()}"
                    _admin(pg_url, f"CREATE DATABASE {name}")
                    try:
                        results.append(("postgresql", kind, run_child(
                            kind, folder / f"pg-{kind}", _with_database(pg_url, name),
                            customers_csv, orders_csv)))
                    finally:
                        _admin(pg_url, f"DROP DATABASE IF EXISTS {name}")
                    print(f"postgresql {kind}: {results[-1][2]['seconds']:.1f}s", flush=True)
        finally:
            if cluster is not None:
                cluster.stop()

    print()
    print(f"{'database':<11} {'run':<9} {'rows':>10} {'seconds':>8} {'rows/s':>9} "
          f"{'vs baseline':>11} {'peak RSS':>9}")
    baseline_rate: dict[str, float] = {}
    for database, kind, r in results:
        rate = r["rows"] / r["seconds"]
        if kind == "baseline":
            baseline_rate[database] = rate
        ratio = rate / baseline_rate[database] if database in baseline_rate else float("nan")
        print(f"{database:<11} {kind:<9} {r['rows']:>10,} {r['seconds']:>8.1f} {rate:>9,.0f} "
              f"{ratio:>11.2f} {r['peak_mb']:>6.0f} MB")
    print("\ntarget: importer >= 0.5 x baseline rows/s, peak RSS < 500 MB")


if __name__ == "__main__":
    main()
