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

PostgreSQL: `--pg-url` names an empty database to use, else a temporary cluster is started with
Debian's `initdb`/`pg_ctl` (as the `postgres` user when run as root) and removed afterwards.

    .venv/bin/python benchmarks/dashboard_bench.py --customers 100000
    .venv/bin/python benchmarks/dashboard_bench.py                # 1,000,000 / ~10,000,000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
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
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


@contextlib.contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(REPO))
    from tests.support.services import postgres_server

    with postgres_server() as server:
        yield server.url


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database to use")
    args = parser.parse_args()

    with _database(args.pg_url) as url, tempfile.TemporaryDirectory() as folder:
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vafa.settings")
        os.environ.setdefault("VAFA_HOME", str(Path(folder) / "home"))
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        from vafa.customers.synthetic import ShopParameters, generate_shop
        from vafa.insights.services import insights_refresh

        settings.ALLOWED_HOSTS = ["*"]
        setup_test_environment()
        done = _step("migrate")
        call_command("migrate", verbosity=0)
        done()
        done = _step(f"generate {args.customers:,} customers")
        generate_shop(Path(folder) / "shop", customers=args.customers, seed=args.seed,
                      parameters=ShopParameters(alpha=ALPHA_FOR_TEN_ORDERS))
        done()
        done = _step("COPY into PostgreSQL")
        counts = _load(Path(folder) / "shop")
        done()
        print("  " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
        done = _step("analysis (insights refresh)")
        run = insights_refresh(triggered_by="benchmark")
        done()
        if run.status != run.Status.DONE:
            raise SystemExit(f"the analysis failed: {run.error}")

        owner = User.objects.create_user("bench", password="-", is_staff=True)
        owner.groups.add(Group.objects.get_or_create(name="owner")[0])
        client = Client()
        client.force_login(owner)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT min(id), max(id) FROM customers_customer")
            low, high = cursor.fetchone()
        rng = random.Random(args.seed)
        n = args.requests
        pages: dict[str, list[str]] = {
            "static (font asset)": ["/dashboard/assets/33.0.3/vazirmatn.woff2"] * n,
            "overview": ["/dashboard/"] * n,
        }
        try:
            from vafa.insights.segments import segment_count  # noqa: F401

            pages["segment count"] = [
                f"/dashboard/segments/count/?{SEGMENT_QUERIES[i % len(SEGMENT_QUERIES)]}"
                for i in range(n)
            ]
        except ImportError:
            print("  (no vafa.insights.segments.segment_count: segment counts not timed)")
        pages["customer 360"] = [
            f"/dashboard/customers/{rng.randint(low, high)}/" for _ in range(n)
        ]
        for urls in pages.values():  # warm caches and connections once per page
            _timed(client, urls[:3])
        results = {name: _timed(client, urls) for name, urls in pages.items()}

    static_p95 = statistics.quantiles(results["static (font asset)"], n=20)[18]
    print(f"\n{counts['customers']:,} customers, {counts['orders']:,} orders, "
          f"{n} requests per page (Django test client, PostgreSQL)")
    print(f"{'page':<22}{'p50 ms':>10}{'p95 ms':>10}{'p95/static':>12}  target p95 < 500 ms")
    for name, times in results.items():
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[18]
        verdict = "" if name.startswith("static") else ("ok" if p95 < 0.5 else "MISSED")
        print(f"{name:<22}{_ms(p50):>10}{_ms(p95):>10}{p95 / static_p95:>12.1f}  {verdict}")


if __name__ == "__main__":
    main()
