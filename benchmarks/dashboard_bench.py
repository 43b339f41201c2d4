"""Time the dashboard's pages on a large shop in PostgreSQL, next to a static page.

Generates a synthetic shop (`vafa.customers.synthetic.generate_shop`, fixed seed, its purchase
rate raised so that customers average about ten orders each), loads its customers, orders and
tickets into a freshly migrated PostgreSQL database with `COPY` (into unlogged staging tables,
then one `INSERT … SELECT` per table so customer ids are resolved in SQL), runs the analysis
(`vafa.insights.services.insights_refresh`, which stores the scores the pages read), then times
requests through Django's full middleware stack (test client, one logged-in owner):

- **static**: a vendored asset served by a view from memory (the font): the floor every page
  pays (URL routing, middleware, session, response);
- **overview**: `/dashboard/`;
- **segment count**: the segment builder's live count, `/dashboard/segments/count/?…` (when
  `vafa.insights.segments.segment_count` exists), on a few different filter sets;
- **customer 360**: `/dashboard/customers/<id>/` for a different random customer each time.

Each line prints p50 and p95 in milliseconds and p95 against the static page's p95. Target
(issue 8): overview, segment counts and customer 360 under 500 ms at p95 with 1,000,000
customers and 10,000,000 orders.

Loading 10 million orders takes a long while, so the PostgreSQL cluster is kept between runs in
`--data-dir` (default `/var/tmp/vafa-bench/dashboard-<customers>`; created with Debian's
`initdb`, run by `pg_ctl` as the `postgres` user when run as root, stopped but not removed at the
end). Each phase runs only when needed: migrate (always; a no-op when up to date), generate and
load (when the database has no customers), the analysis (when no finished run exists, or with
`--refresh`, e.g. after changing what the refresh stores), then the measurement. `--fresh`
deletes the kept directory first; `--pg-url` uses an existing database instead (same phases).

    .venv/bin/python benchmarks/dashboard_bench.py --customers 100000
    .venv/bin/python benchmarks/dashboard_bench.py                # 1,000,000 / ~10,000,000
    .venv/bin/python benchmarks/dashboard_bench.py --prepare-only # load and analyse, no timing
    .venv/bin/python benchmarks/dashboard_bench.py --refresh      # analyse again, then time
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SEED = 20260320
# The generator's default shop buys about 2.4 times per customer over its two years; a
# purchase-rate scale α of 14 days (instead of 75) gives about ten orders per customer.
ALPHA_FOR_TEN_ORDERS = 14.0
SEGMENT_QUERIES = (
    "rfm_segment=at_risk&rfm_segment=cant_lose",
    "clv__min=1000000",
    "city=تهران&rfm_segment=champions",
    "p_alive__max=0.3",
    # The filters that aggregate orders (answered from the refresh's per-customer stats).
    "order_count__min=5",
    "total_spent__min=20000000",
    "last_purchase_days__min=90&order_count__min=2",
)
DEFAULT_DATA_ROOT = Path("/var/tmp/vafa-bench")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


@contextlib.contextmanager
def _kept_cluster(data_dir: Path, *, fresh: bool) -> Iterator[str]:
    """A PostgreSQL cluster in `data_dir`, created on first use and kept (stopped) afterwards,
    so a later run skips the load. Yields its URL."""
    sys.path.insert(0, str(REPO))
    from tests.support.services import free_port, pg_bindir

    bindir = pg_bindir()
    prefix: list[str] = []
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # PostgreSQL refuses root: run it as Debian's postgres user
        user = pwd.getpwnam("postgres")
        for folder in (data_dir.parent, data_dir):
            os.chown(folder, user.pw_uid, user.pw_gid)
        data_dir.chmod(0o700)
        prefix = ["runuser", "-u", "postgres", "--"]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres",
                        "--auth=trust", "--encoding=UTF8", "--no-sync"],
                       check=True, capture_output=True, env=env)
    port = free_port()
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories="
               f"{data_dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c shared_buffers=1GB -c work_mem=64MB -c maintenance_work_mem=512MB "
               "-c max_wal_size=8GB")
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data_dir), "-o", options,
                    "-l", str(data_dir / "server.log"), "-w", "-t", "120", "start"],
                   check=True, capture_output=True, env=env)
    print(f"  PostgreSQL data kept in {data_dir} (port {port})", flush=True)
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "fast",
                        "-w", "stop"], capture_output=True, env=env)


@contextlib.contextmanager
def _database(url: str | None, data_dir: Path, *, fresh: bool) -> Iterator[str]:
    if url:
        yield url
        return
    with _kept_cluster(data_dir, fresh=fresh) as kept:
        yield kept


def _step(label: str) -> Callable[[], None]:
    print(f"… {label}", flush=True)
    started = time.perf_counter()

    def done() -> None:
        print(f"  {label}: {time.perf_counter() - started:,.1f} s", flush=True)

    return done


def _load(folder: Path) -> dict[str, int]:
    """COPY the generated CSVs into staging tables, then into the real tables in SQL."""
    from django.db import connection, transaction

    staging = {
        "customers": "customer_id, email, phone, first_name, last_name, gender, birth_date, "
                     "city, country, language, timezone, signup_at, acquisition_source, "
                     "accepts_email, accepts_sms",
        "orders": "order_id, customer_id, placed_at, status, total, currency, discount, "
                  "shipping, channel",
        "tickets": "ticket_id, customer_id, opened_at, first_response_at, resolved_at, channel, "
                   "subject, satisfaction",
    }
    counts: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        for name, columns in staging.items():
            text_columns = ", ".join(f"{column.strip()} text" for column in columns.split(","))
            cursor.execute(f"CREATE UNLOGGED TABLE stage_{name} ({text_columns})")
            with (folder / f"{name}.csv").open("rb") as handle, raw.copy(
                f"COPY stage_{name} FROM STDIN (FORMAT csv, HEADER true)"
            ) as copy:
                while block := handle.read(1 << 20):
                    copy.write(block)
        cursor.execute("""
            INSERT INTO customers_customer (external_id, email, phone, first_name, last_name,
                gender, birth_date, city, country, language, timezone, signup_at,
                acquisition_source, attributes, created_at, updated_at)
            SELECT customer_id, coalesce(email, ''), coalesce(phone, ''),
                coalesce(first_name, ''), coalesce(last_name, ''), coalesce(gender, ''),
                nullif(birth_date, '')::date, coalesce(city, ''), coalesce(country, ''),
                coalesce(language, ''), coalesce(timezone, ''),
                nullif(signup_at, '')::timestamptz, coalesce(acquisition_source, ''),
                '{}'::jsonb, now(), now()
            FROM stage_customers""")
        counts["customers"] = cursor.rowcount
        cursor.execute("""
            INSERT INTO customers_order (external_id, customer_id, placed_at, status, total,
                discount, shipping, refunded_amount, currency, channel, fulfillment_status,
                created_at, updated_at)
            SELECT o.order_id, c.id, o.placed_at::timestamptz, o.status, o.total::numeric,
                coalesce(nullif(o.discount, ''), '0')::numeric,
                coalesce(nullif(o.shipping, ''), '0')::numeric,
                CASE WHEN o.status = 'partially_refunded' THEN o.total::numeric / 2 ELSE 0 END,
                o.currency, coalesce(o.channel, ''), '', now(), now()
            FROM stage_orders o JOIN customers_customer c ON c.external_id = o.customer_id""")
        counts["orders"] = cursor.rowcount
        cursor.execute("""
            INSERT INTO customers_ticket (external_id, customer_id, opened_at, first_response_at,
                resolved_at, channel, subject, satisfaction)
            SELECT t.ticket_id, c.id, t.opened_at::timestamptz,
                nullif(t.first_response_at, '')::timestamptz,
                nullif(t.resolved_at, '')::timestamptz, coalesce(t.channel, ''),
                coalesce(t.subject, ''), nullif(t.satisfaction, '')::smallint
            FROM stage_tickets t JOIN customers_customer c ON c.external_id = t.customer_id""")
        counts["tickets"] = cursor.rowcount
        for name in staging:
            cursor.execute(f"DROP TABLE stage_{name}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return counts


def _timed(client: Any, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        times.append(elapsed)
    return times


def _percentiles(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL database to use")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the PostgreSQL cluster is kept between runs")
    parser.add_argument("--fresh", action="store_true", help="delete the kept cluster first")
    parser.add_argument("--refresh", action="store_true", help="run the analysis again")
    parser.add_argument("--prepare-only", action="store_true", help="load and analyse only")
    parser.add_argument("--load-only", action="store_true", help="load only, no analysis")
    args = parser.parse_args()
    data_dir = args.data_dir or DEFAULT_DATA_ROOT / f"dashboard-{args.customers}"

    with (_database(args.pg_url, data_dir, fresh=args.fresh) as url,
          tempfile.TemporaryDirectory() as folder):
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vafa.settings")
        os.environ.setdefault("VAFA_HOME", str(Path(folder) / "home"))
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment

        from vafa.customers.models import Customer, Order
        from vafa.customers.synthetic import ShopParameters, generate_shop
        from vafa.insights.models import AnalysisRun
        from vafa.insights.services import insights_refresh

        settings.ALLOWED_HOSTS = ["*"]
        setup_test_environment()
        done = _step("migrate")
        call_command("migrate", verbosity=0)
        done()
        if not Customer.objects.exists():
            done = _step(f"generate {args.customers:,} customers")
            generate_shop(Path(folder) / "shop", customers=args.customers, seed=args.seed,
                          parameters=ShopParameters(alpha=ALPHA_FOR_TEN_ORDERS))
            done()
            done = _step("COPY into PostgreSQL")
            loaded = _load(Path(folder) / "shop")
            done()
            print("  " + ", ".join(f"{name} {count:,}" for name, count in loaded.items()))
        with connection.cursor() as cursor:  # planner estimates: exact counts take seconds
            cursor.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relname IN "
                           "('customers_customer', 'customers_order')")
            estimates = dict(cursor.fetchall())
        counts = {"customers": int(estimates.get("customers_customer", 0)),
                  "orders": int(estimates.get("customers_order", 0))}
        if counts["customers"] <= 0:
            counts = {"customers": Customer.objects.count(), "orders": Order.objects.count()}
        if args.load_only:
            print(f"loaded: {counts['customers']:,} customers, ~{counts['orders']:,} orders")
            return
        finished = AnalysisRun.objects.filter(status=AnalysisRun.Status.DONE).exists()
        if args.refresh or not finished:
            done = _step("analysis (insights refresh)")
            run = insights_refresh(triggered_by="benchmark")
            done()
            if run.status != run.Status.DONE:
                raise SystemExit(f"the analysis failed: {run.error}")
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        if args.prepare_only:
            print(f"prepared: {counts['customers']:,} customers, ~{counts['orders']:,} orders")
            return

        owner, _created = User.objects.get_or_create(username="bench", defaults={
            "is_staff": True})
        owner.groups.add(Group.objects.get_or_create(name="owner")[0])
        client = Client()
        client.force_login(owner)

        with connection.cursor() as cursor:
            cursor.execute("SELECT min(id), max(id) FROM customers_customer")
            low, high = cursor.fetchone()
        rng = random.Random(args.seed)
        n = args.requests
        pages: dict[str, list[str]] = {
            "static (font asset)": ["/dashboard/assets/33.0.3/vazirmatn.woff2"] * n,
            "overview": ["/dashboard/"] * n,
            "segment count": [
                f"/dashboard/segments/count/?{SEGMENT_QUERIES[i % len(SEGMENT_QUERIES)]}"
                for i in range(n)
            ],
            "customer 360": [
                f"/dashboard/customers/{rng.randint(low, high)}/" for _ in range(n)
            ],
        }
        for urls in pages.values():  # warm caches and connections once per page
            _timed(client, urls[:3])
        load_before = os.getloadavg()
        results = {name: _timed(client, urls) for name, urls in pages.items()}
        load_after = os.getloadavg()

    static_p95 = _percentiles(results["static (font asset)"])[1]
    print(f"\n{counts['customers']:,} customers, ~{counts['orders']:,} orders, "
          f"{n} requests per page (Django test client, PostgreSQL)")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"on {os.cpu_count()} cores")
    print(f"{'page':<22}{'p50 ms':>10}{'p95 ms':>10}{'p95/static':>12}  target p95 < 500 ms")
    for name, times in results.items():
        p50, p95 = _percentiles(times)
        verdict = "" if name.startswith("static") else ("ok" if p95 < 0.5 else "MISSED")
        print(f"{name:<22}{_ms(p50):>10}{_ms(p95):>10}{p95 / static_p95:>12.1f}  {verdict}")
    print("\nsegment count by filter set:")
    for index, query in enumerate(SEGMENT_QUERIES):
        times = results["segment count"][index::len(SEGMENT_QUERIES)]
        print(f"  {_ms(statistics.median(times)):>8} ms p50  {_ms(max(times)):>8} ms max  {query}")
    if not args.pg_url:
        print(f"\nPostgreSQL data kept in {data_dir}; rerun only the measurement with:\n"
              f"  .venv/bin/python benchmarks/dashboard_bench.py --customers {args.customers}"
              + (f" --data-dir {data_dir}" if args.data_dir else ""))


if __name__ == "__main__":
    main()
