"""Render and enqueue a campaign to 100,000 customers, then deliver it to a local SMTP sink.

Builds a throwaway database (an SQLite file by default, or a throwaway PostgreSQL cluster with
`--db postgres`; Debian's `initdb`/`pg_ctl` as in the tests, with `fsync=off`), migrates it,
creates `--customers` customers in Tehran, Dubai and Toronto writing fa, ar and en, each with
email consent, and one campaign to all of them with two A/B variants (templates in the three
languages, link tracking on, the default 10% control group). Then it times, in the same run:

1. **baseline**: plain Jinja2 (`jinja2.Environment`, no sandbox, no database) rendering the
   same subject, HTML and text for every customer from ready-made dictionaries;
2. **render + enqueue**: `campaign_start` (snapshot of the segment, variant per customer) and
   `campaign_enqueue` (contexts read per batch, sandboxed rendering with localised numbers,
   email document with inlined CSS, tracked links, control group, each recipient's
   recommendations, one `executemany` insert per chunk);
3. **delivery**: `--workers` processes running `vafa outbox flush` against an aiosmtpd sink in
   its own process, until `--deliver` messages were sent; beside it two ceilings of the sink
   (aiosmtpd is pure Python on the same cores): plain `smtplib` building and sending messages
   over one connection, and a raw-socket client replaying ready-made SMTP transactions (as
   little client CPU as possible: what the sink itself can take).

`BENCH_PROFILE=enqueue` profiles the enqueue step, `BENCH_PROFILE=deliver` runs one flush of
`--deliver` messages in this process under the profiler instead of the worker processes.

    .venv/bin/python benchmarks/messaging_bench.py
    .venv/bin/python benchmarks/messaging_bench.py --customers 20000 --deliver 5000 --db postgres

Target (issue 6): render + enqueue at least 2,000 messages/s, delivery at least 500/s on 2
cores. The SMTP sink runs on the same cores and takes part of the budget it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.services import _wait_for_port, free_port, postgres_server  # noqa: E402

VAFA = str(Path(sys.executable).parent / "vafa")
ZONES = (("fa", "Asia/Tehran"), ("ar", "Asia/Dubai"), ("en", "America/Toronto"))
FIRST_NAMES = {"fa": "زهرا", "ar": "ليلى", "en": "Olivia"}
TEMPLATES = {
    "fa": ("سلام {{ customer.first_name }}، حراج بهاری", "سلام {{ customer.first_name }}"),
    "ar": ("مرحبا {{ customer.first_name }}، تخفيضات الربيع", "مرحبا {{ customer.first_name }}"),
    "en": ("Hello {{ customer.first_name }}, spring sale", "Hello {{ customer.first_name }}"),
}
BODY_HTML = (
    "<h1>{greeting}</h1><p>{{{{ points }}}} · {{{{ social_proof }}}}</p>"
    "<ul>{{% for p in recommended_products %}}<li>{{{{ p.name }}}}</li>{{% endfor %}}</ul>"
    '<p><a href="https://shop.example/sale">sale</a> · '
    '<a href="https://shop.example/new">new</a></p>'
    '<p><a href="{{{{ unsubscribe_url }}}}">x</a></p>'
)

BODY_TEXT = (
    "{greeting}\n{{{{ points }}}} · {{{{ social_proof }}}}\n"
    "{{% for p in recommended_products %}}{{{{ p.name }}}}\n{{% endfor %}}"
    "https://shop.example/sale"
)
PRODUCTS = 40  # each with 5 similar products; every 4th customer bought two of them


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "postgres":
        with postgres_server() as server:
            yield f"postgres://{server.user}@{server.host}:{server.port}/{server.dbname}"
    else:
        yield f"sqlite:///{folder / 'bench.sqlite3'}"


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """aiosmtpd's discarding `Sink` handler in a process of its own."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
         "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, 20, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def seed(customers: int) -> Any:
    """Customers, consents, templates and the campaign draft; returns the campaign."""
    from django.utils import timezone

    from vafa.customers.models import Channel, Consent, Customer
    from vafa.insights.models import Segment
    from vafa.messaging.campaigns.models import Campaign, CampaignVariant
    from vafa.messaging.models import MessageTemplate, MessagingSettings

    now = timezone.now()
    # Quiet hours and caps off: the run happens at whatever hour it is in the three zones.
    MessagingSettings.objects.create(pk=1, cap_messages=0, quiet_start="00:00", quiet_end="00:00")
    for key, suffix in (("spring-a", ""), ("spring-b", " 🌷")):
        for language, (subject, greeting) in TEMPLATES.items():
            MessageTemplate.objects.create(
                key=key, channel=Channel.EMAIL, language=language, subject=subject + suffix,
                body_html=BODY_HTML.format(greeting=greeting), body_text=BODY_TEXT.format(
                    greeting=greeting
                ),
            )
    batch = 5000
    for start in range(0, customers, batch):
        rows = []
        for i in range(start, min(customers, start + batch)):
            language, zone = ZONES[i % 3]
            rows.append(Customer(
                external_id=f"b{i}", first_name=FIRST_NAMES[language], email=f"b{i}@example.com",
                language=language, timezone=zone,
            ))
        made = Customer.objects.bulk_create(rows)
        ids = [c.pk for c in made] if made[0].pk else list(
            Customer.objects.filter(external_id__in=[c.external_id for c in rows]).values_list(
                "pk", flat=True
            )
        )
        Consent.objects.bulk_create([
            Consent(customer_id=pk, channel=Channel.EMAIL, granted=True, changed_at=now,
                    source="bench") for pk in ids
        ])
    seed_purchases(now)
    segment = Segment.objects.create(name="everyone", definition={})
    campaign = Campaign.objects.create(name="Spring sale", segment=segment, channel_order="email")
    CampaignVariant.objects.create(campaign=campaign, name="A", weight=1, template_key="spring-a")
    CampaignVariant.objects.create(campaign=campaign, name="B", weight=1, template_key="spring-b")
    return campaign


def seed_purchases(now: Any) -> None:
    """Products with similar products and recent buyers, and one paid order of two lines for
    every 4th customer, so each message carries that customer's own recommendations (and the
    rest the month's best sellers)."""
    from datetime import timedelta
    from decimal import Decimal

    from vafa.customers.models import Customer, Order, OrderLine, Product, ProductSimilarity

    products = Product.objects.bulk_create([
        Product(external_id=f"p{i}", name=f"Product {i}", price=Decimal(90_000), currency="IRT",
                recent_buyers=1000 - i)
        for i in range(PRODUCTS)
    ])
    ids = [p.pk for p in products] if products[0].pk else list(
        Product.objects.order_by("external_id").values_list("pk", flat=True)
    )
    ProductSimilarity.objects.bulk_create([
        ProductSimilarity(product_id=ids[i], similar_id=ids[(i + j) % PRODUCTS],
                          score=1 / j, co_buyers=10)
        for i in range(PRODUCTS) for j in range(1, 6)
    ])
    buyers = list(Customer.objects.order_by("pk").values_list("pk", flat=True)[::4])
    for start in range(0, len(buyers), 5000):
        part = buyers[start : start + 5000]
        orders = Order.objects.bulk_create([
            Order(external_id=f"o{pk}", customer_id=pk, placed_at=now - timedelta(days=3),
                  status="paid", total=Decimal(180_000), currency="IRT")
            for pk in part
        ])
        order_ids = [o.pk for o in orders] if orders[0].pk else list(
            Order.objects.filter(external_id__in=[f"o{pk}" for pk in part]).order_by(
                "customer_id").values_list("pk", flat=True)
        )
        OrderLine.objects.bulk_create([
            OrderLine(order_id=order_id, line_no=line, product_id=ids[(pk * line * 7) % PRODUCTS],
                      quantity=1, unit_price=Decimal(90_000))
            for order_id, pk in zip(order_ids, part, strict=True) for line in (1, 2)
        ])


def baseline_render(customers: int) -> float:
    """Messages per second for plain Jinja2 on ready-made dictionaries."""
    import jinja2

    env = jinja2.Environment(autoescape=True)
    compiled = {
        language: (
            env.from_string(subject),
            env.from_string(BODY_HTML.format(greeting=greeting)),
            env.from_string(BODY_TEXT.format(greeting=greeting)),
        )
        for language, (subject, greeting) in TEMPLATES.items()
    }
    languages = [ZONES[i % 3][0] for i in range(customers)]
    contexts: list[dict[str, Any]] = [
        {
            "customer": {"first_name": FIRST_NAMES[ZONES[i % 3][0]], "name": "", "city": ""},
            "points": 1240, "social_proof": "1,240 customers bought this this month",
            "recommended_products": [{"name": f"Product {(i + j) % PRODUCTS}"} for j in (1, 2, 3)],
            "unsubscribe_url": f"https://shop.example/m/unsubscribe/{i}/", "lang": ZONES[i % 3][0],
        }
        for i in range(customers)
    ]
    began = time.perf_counter()
    for language, context in zip(languages, contexts, strict=True):
        for template in compiled[language]:
            template.render(context)
    return customers / (time.perf_counter() - began)


def smtplib_ceiling(port: int, count: int) -> float:
    """Messages per second plain smtplib sends to the sink over one connection."""
    from vafa.messaging.models import OutboxMessage

    bodies = [
        (m.subject, m.body_html)
        for m in OutboxMessage.objects.exclude(body_html="").order_by("id")[:count]
    ]
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for i, (subject, html) in enumerate(bodies):
            message = EmailMessage()
            message["Subject"], message["From"] = subject, "shop@shop.example"
            message["To"] = f"b{i}@example.com"
            message.set_content(html, subtype="html")
            client.send_message(message)
    return len(bodies) / (time.perf_counter() - began)


def raw_socket_ceiling(port: int, count: int) -> float:
    """Messages per second the sink takes from a client that only replays bytes: each
    transaction (MAIL, RCPT, DATA, the message) built before the clock starts, one command
    at a time as smtplib sends them, over one connection."""
    from vafa.messaging.models import OutboxMessage

    transactions = []
    for i, (subject, html) in enumerate(
        OutboxMessage.objects.exclude(body_html="").order_by("id").values_list(
            "subject", "body_html"
        )[:count]
    ):
        message = EmailMessage()
        message["Subject"], message["From"] = subject, "shop@shop.example"
        message["To"] = f"b{i}@example.com"
        message.set_content(html, subtype="html")
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        data = data.replace(b"\r\n.", b"\r\n..")
        transactions.append((
            b"MAIL FROM:<shop@shop.example>\r\n",
            f"RCPT TO:<b{i}@example.com>\r\n".encode(),
            b"DATA\r\n",
            data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n",
        ))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        stream = sock.makefile("rb")

        def reply() -> bytes:
            while True:
                line = stream.readline()
                if not line or line[3:4] != b"-":
                    return line

        reply()
        sock.sendall(b"EHLO bench\r\n")
        reply()
        began = time.perf_counter()
        for commands in transactions:
            for command in commands:
                sock.sendall(command)
                line = reply()
                if line[:1] not in (b"2", b"3"):
                    raise SystemExit(f"the sink refused: {line!r}")
        elapsed = time.perf_counter() - began
        sock.sendall(b"QUIT\r\n")
        reply()
    return len(transactions) / elapsed


def deliver_profiled(env: dict[str, str], count: int) -> tuple[int, float]:
    """One flush of `count` messages in this process under cProfile (CPU time)."""
    import cProfile
    import pstats

    from vafa.messaging.models import OutboxMessage, Status
    from vafa.messaging.outbox import outbox_flush

    os.environ.update(env)
    if os.environ.get("BENCH_PROFILE") == "inproc":  # no profiler: this process's CPU time
        began, cpu = time.perf_counter(), time.process_time()
        outbox_flush(limit=count)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        print(f"one flush in this process: {elapsed:.1f} s wall, {cpu:.1f} s CPU")
        return OutboxMessage.objects.filter(status=Status.SENT).count(), elapsed
    profiler = cProfile.Profile()  # wall clock: waiting on the sink or the database shows
    began = time.perf_counter()
    profiler.runcall(outbox_flush, limit=count)
    elapsed = time.perf_counter() - began
    pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
    pstats.Stats(profiler).sort_stats("cumtime").print_stats(35)
    return OutboxMessage.objects.filter(status=Status.SENT).count(), elapsed


def deliver(env: dict[str, str], workers: int, count: int) -> tuple[int, float]:
    per_worker = -(-count // workers)
    began = time.perf_counter()
    procs = [
        subprocess.Popen([VAFA, "outbox", "flush", "--limit", str(per_worker)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a flush failed:\n{err[-3000:]}")
    elapsed = time.perf_counter() - began
    from vafa.messaging.models import OutboxMessage, Status

    return OutboxMessage.objects.filter(status=Status.SENT).count(), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=20_000,
                        help="messages to deliver (delivery is timed on these)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vafa_msg_bench_") as folder, database(
        args.db, Path(folder)
    ) as url:
        os.environ.update(
            DATABASE_URL=url, DJANGO_SETTINGS_MODULE="vafa.settings",
            VAFA_SITE_URL="https://shop.example", VAFA_EMAIL_FROM="shop@shop.example",
            VAFA_QUEUE_URL="immediate",
        )
        import django
        from django.core.management import call_command
        from django.utils import timezone

        django.setup()
        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        campaign = seed(args.customers)
        print(f"seeded {args.customers:,} customers ({args.db}) in "
              f"{time.perf_counter() - began:.1f} s")

        from vafa.messaging.campaigns.selectors import campaign_status_counts
        from vafa.messaging.campaigns.services import (
            campaign_enqueue,
            campaign_schedule,
            campaign_start,
        )

        baseline = baseline_render(args.customers)
        # A running worker has its URL configuration loaded (message links are reversed URLs;
        # loading it imports every app's views, about a second): load it before the clock
        # starts, as `baseline_render` imports Jinja2 before its own.
        from django.urls import reverse

        reverse("messaging:preferences", args=["warm-up"])
        now = timezone.now()
        began = time.perf_counter()
        campaign = campaign_schedule(campaign=campaign, now=now)
        campaign = campaign_start(campaign=campaign, now=now)
        snapshot_s = time.perf_counter() - began
        cpu = time.process_time()
        if os.environ.get("BENCH_PROFILE") == "enqueue":
            import cProfile
            import pstats

            profiler = cProfile.Profile(time.process_time)
            progress = profiler.runcall(campaign_enqueue, campaign=campaign, now=now)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            pstats.Stats(profiler).sort_stats("cumtime").print_stats(60)
        else:
            progress = campaign_enqueue(campaign=campaign, now=now)
        enqueue_s = time.perf_counter() - began
        enqueue_cpu = time.process_time() - cpu
        assert progress.done and not progress.errors, progress
        counts = campaign_status_counts(campaign)
        rendered = progress.created
        print(f"enqueued {rendered:,} messages ({counts}); snapshot {snapshot_s:.1f} s, "
              f"total {enqueue_s:.1f} s wall, enqueue {enqueue_cpu:.1f} s CPU of this process "
              f"({rendered / enqueue_cpu:.0f} msgs per CPU-second)")

        with smtp_sink() as port:
            env = {**os.environ, "VAFA_SMTP_URL": f"smtp://127.0.0.1:{port}"}
            probe = min(2000, args.deliver)
            ceiling = smtplib_ceiling(port, probe)
            raw = raw_socket_ceiling(port, probe)
            if os.environ.get("BENCH_PROFILE") in ("deliver", "inproc"):
                sent, deliver_s = deliver_profiled(env, args.deliver)
            else:
                sent, deliver_s = deliver(env, args.workers, args.deliver)
        print()
        print(f"{'step':<44}{'messages':>10}{'seconds':>9}{'msgs/s':>9}")
        print(f"{'baseline: plain Jinja2 render (no DB)':<44}{args.customers:>10,}"
              f"{args.customers / baseline:>9.1f}{baseline:>9.0f}")
        print(f"{'vafa render + enqueue (snapshot included)':<44}{rendered:>10,}"
              f"{enqueue_s:>9.1f}{rendered / enqueue_s:>9.0f}")
        print(f"{'baseline: smtplib to the sink, 1 connection':<44}{probe:>10,}"
              f"{probe / ceiling:>9.1f}{ceiling:>9.0f}")
        print(f"{'baseline: raw socket to the sink (its ceiling)':<44}{probe:>10,}"
              f"{probe / raw:>9.1f}{raw:>9.0f}")
        print(f"{f'vafa delivery, {args.workers} x vafa outbox flush':<44}{sent:>10,}"
              f"{deliver_s:>9.1f}{sent / deliver_s:>9.0f}")
        print(f"\ndelivery reaches {sent / deliver_s / raw:.0%} of the sink's raw ceiling; "
              f"render+enqueue is {baseline / (rendered / enqueue_s):.1f}x slower than plain "
              "Jinja2; targets: render+enqueue >= 2,000/s, delivery >= 500/s")


if __name__ == "__main__":
    main()
