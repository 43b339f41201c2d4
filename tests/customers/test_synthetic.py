"""The synthetic shop generator: canonical files, reproducible bytes, consistent truth, realism."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import phonenumbers
import pytest
from scipy import stats
from typer.testing import CliRunner

from vafa.customers.synthetic import (
    CANONICAL_COLUMNS,
    ShopParameters,
    ShopSummary,
    generate_shop,
)
from vafa.customers.synthetic_data.calendar import nowruz
from vafa.customers.synthetic_data.catalogue import ITEMS, KINDS, Item

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PERSIAN = re.compile(r"^[\u0600-\u06ff\u200c ]+$")
IRANIAN_MOBILE = re.compile(r"^\+989\d{9}$")

Row = dict[str, str]


def _read(shop: ShopSummary, name: str) -> list[Row]:
    with shop.paths[name].open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _digests(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.glob("*.csv"))
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> ShopSummary:
    return generate_shop(tmp_path_factory.mktemp("shop300"), customers=300, seed=11)


@pytest.fixture(scope="module")
def big_shop(tmp_path_factory: pytest.TempPathFactory) -> ShopSummary:
    """Enough customers for seasonal and basket patterns to show (about a third of a second)."""
    return generate_shop(tmp_path_factory.mktemp("shop2000"), customers=2000, seed=3)


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    generate_shop(tmp_path / "a", customers=300, seed=5)
    generate_shop(tmp_path / "b", customers=300, seed=5)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(first) == 7
    assert first == second


def test_a_different_seed_writes_different_data(tmp_path: Path) -> None:
    generate_shop(tmp_path / "a", customers=300, seed=5)
    generate_shop(tmp_path / "b", customers=300, seed=6)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    for name in ("customers.csv", "products.csv", "orders.csv", "events.csv", "ground_truth.csv"):
        assert first[name] != second[name], name


def test_every_file_has_exactly_the_canonical_header_in_utf8_with_newlines(
    shop: ShopSummary,
) -> None:
    expected = {
        "customers": "customer_id,email,phone,first_name,last_name,gender,birth_date,city,"
        "country,language,timezone,signup_at,acquisition_source,accepts_email,accepts_sms",
        "products": "product_id,name,category,price",
        "orders": "order_id,customer_id,placed_at,status,total,currency,discount,shipping,channel",
        "order_lines": "order_id,product_id,quantity,unit_price",
        "events": "customer_id,type,occurred_at,properties",
        "tickets": "ticket_id,customer_id,opened_at,first_response_at,resolved_at,channel,"
        "subject,satisfaction",
        "ground_truth": "customer_id,purchase_rate,dropout_at,alive_at_end",
    }
    assert set(shop.paths) == set(expected) == set(CANONICAL_COLUMNS)
    for name, header in expected.items():
        raw = shop.paths[name].read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf"), name
        assert b"\r" not in raw, name
        assert raw.decode("utf-8").split("\n", 1)[0] == header
        assert raw.endswith(b"\n")
        assert shop.counts[name] == len(_read(shop, name)), name


def test_the_summary_counts_and_names_the_files(shop: ShopSummary) -> None:
    assert shop.counts["customers"] == shop.counts["ground_truth"] == 300
    assert shop.end == date(2026, 9, 30)
    assert shop.start == date(2024, 10, 1)
    assert shop.horizon_end == datetime(2026, 9, 30, 20, 30, tzinfo=UTC)  # midnight in Tehran
    assert all(path.parent == shop.out_dir for path in shop.paths.values())


def test_ids_are_sequential_and_every_reference_resolves(shop: ShopSummary) -> None:
    customers = [row["customer_id"] for row in _read(shop, "customers")]
    products = {row["product_id"] for row in _read(shop, "products")}
    orders = _read(shop, "orders")
    assert customers == [f"C{i:06d}" for i in range(1, 301)]
    assert [row["order_id"] for row in orders] == [f"O{i:07d}" for i in range(1, len(orders) + 1)]
    assert all(re.fullmatch(r"P\d{4}", product) for product in products)
    assert {row["customer_id"] for row in orders} <= set(customers)
    order_ids = {row["order_id"] for row in orders}
    lines = _read(shop, "order_lines")
    assert {row["order_id"] for row in lines} == order_ids  # and no order without lines
    assert {row["product_id"] for row in lines} <= products
    assert len({(row["order_id"], row["product_id"]) for row in lines}) == len(lines)
    assert {row["customer_id"] for row in _read(shop, "events")} <= set(customers)
    tickets = _read(shop, "tickets")
    assert {row["customer_id"] for row in tickets} <= set(customers)
    assert len({row["ticket_id"] for row in tickets}) == len(tickets)


def test_an_order_total_is_its_lines_less_the_discount_plus_shipping(shop: ShopSummary) -> None:
    subtotal: dict[str, Decimal] = defaultdict(Decimal)
    for line in _read(shop, "order_lines"):
        assert int(line["quantity"]) >= 1
        subtotal[line["order_id"]] += int(line["quantity"]) * Decimal(line["unit_price"])
    orders = _read(shop, "orders")
    for order in orders:
        total, discount = Decimal(order["total"]), Decimal(order["discount"])
        shipping = Decimal(order["shipping"])
        assert total == subtotal[order["order_id"]] - discount + shipping, order
        assert Decimal(0) <= discount < subtotal[order["order_id"]]
        assert shipping >= 0
        assert order["currency"] == "IRT"
        for amount in (order["total"], order["discount"], order["shipping"]):
            assert re.fullmatch(r"0|[1-9]\d*", amount)  # plain whole Toman, no separators
    assert any(Decimal(order["discount"]) > 0 for order in orders)
    assert any(Decimal(order["shipping"]) > 0 for order in orders)


def test_product_prices_are_realistic_toman_rounded_to_a_thousand(shop: ShopSummary) -> None:
    products = _read(shop, "products")
    prices = [int(row["price"]) for row in products]
    assert all(price % 1000 == 0 for price in prices)
    assert min(prices) >= 150_000 and max(prices) <= 90_000_000
    assert len({row["category"] for row in products}) == 10
    assert all(PERSIAN.match(row["category"]) for row in products)


def test_phones_are_unique_valid_iranian_mobiles_in_e164(shop: ShopSummary) -> None:
    phones = [row["phone"] for row in _read(shop, "customers")]
    assert all(IRANIAN_MOBILE.match(phone) for phone in phones)
    assert len(set(phones)) == len(phones)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(phone)) for phone in phones)


def test_emails_are_unique_and_only_on_reserved_example_domains(shop: ShopSummary) -> None:
    emails = [row["email"] for row in _read(shop, "customers") if row["email"]]
    assert 0.5 < len(emails) / 300 < 0.85  # Iranian shops sign up by phone; e-mail is optional
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z][a-z._]*\d+@[a-z]+\.example", email) for email in emails)


def test_names_and_cities_are_in_persian_script(shop: ShopSummary) -> None:
    for row in _read(shop, "customers"):
        for column in ("first_name", "last_name", "city"):
            assert PERSIAN.match(row[column]), (column, row[column])


def test_customer_fields_use_the_canonical_vocabularies(shop: ShopSummary) -> None:
    rows = _read(shop, "customers")
    assert {row["gender"] for row in rows} == {"female", "male"}
    assert {row["country"] for row in rows} == {"IR"}
    assert {row["timezone"] for row in rows} == {"Asia/Tehran"}
    assert {row["language"] for row in rows} <= {"fa", "en", "ar"}
    assert Counter(row["language"] for row in rows).most_common(1)[0][0] == "fa"
    assert {row["acquisition_source"] for row in rows} <= {
        "organic_search", "instagram", "google_ads", "referral", "telegram", "direct",
        "affiliate", "email",
    }  # fmt: skip
    for row in rows:
        assert row["accepts_email"] in {"true", "false"} and row["accepts_sms"] in {"true", "false"}
        assert row["accepts_email"] == "false" or row["email"]
        assert ISO_UTC.match(row["signup_at"])
        signup = _when(row["signup_at"])
        assert shop.horizon_start <= signup < shop.horizon_end
        age = (signup.date() - date.fromisoformat(row["birth_date"])).days / 365.2425
        assert 18 <= age < 71


def test_signups_are_numbered_in_time_order(shop: ShopSummary) -> None:
    signups = [_when(row["signup_at"]) for row in _read(shop, "customers")]
    assert signups == sorted(signups)


def test_the_ground_truth_agrees_with_the_orders(shop: ShopSummary) -> None:
    truth = {row["customer_id"]: row for row in _read(shop, "ground_truth")}
    signup = {row["customer_id"]: _when(row["signup_at"]) for row in _read(shop, "customers")}
    orders = _read(shop, "orders")
    for order in orders:
        placed = _when(order["placed_at"])
        row = truth[order["customer_id"]]
        assert float(row["purchase_rate"]) > 0
        assert signup[order["customer_id"]] <= placed < shop.horizon_end
        if row["dropout_at"]:
            assert placed <= _when(row["dropout_at"])
    for customer_id, row in truth.items():
        assert row["alive_at_end"] == ("true" if not row["dropout_at"] else "false")
        if row["dropout_at"]:
            assert _when(row["dropout_at"]) < shop.horizon_end
        if float(row["purchase_rate"]) == 0:  # never converted: dead from signup
            assert _when(row["dropout_at"]) == signup[customer_id]
    buyers = {order["customer_id"] for order in orders}
    alive = [row["alive_at_end"] == "true" for row in truth.values()]
    assert 0.3 < len(buyers) / 300 < 0.9
    assert 0 < sum(alive) < len(alive)


def test_latent_purchase_rates_follow_the_configured_gamma_law(big_shop: ShopSummary) -> None:
    params = ShopParameters()
    rates = np.array([float(row["purchase_rate"]) for row in _read(big_shop, "ground_truth")])
    converted = rates[rates > 0]
    assert 0.6 < converted.size / rates.size < 0.8  # conversion 0.7
    # Gamma(shape r, rate α): mean r/α = 0.012; with ~1400 draws the standard error is ~3%.
    assert converted.mean() == pytest.approx(params.r / params.alpha, rel=0.12)
    test = stats.kstest(converted, stats.gamma(a=params.r, scale=1 / params.alpha).cdf)
    assert test.pvalue > 1e-3


def test_orders_rush_in_the_two_weeks_before_nowruz(big_shop: ShopSummary) -> None:
    new_year = nowruz(2026)  # 21 March 2026
    per_day = Counter(
        (_when(row["placed_at"]) + timedelta(hours=3, minutes=30)).date()
        for row in _read(big_shop, "orders")
    )
    rush = [new_year - timedelta(days=d) for d in range(1, 15)]
    # A year centred on the rush, so that the shop's growth does not favour either side.
    year = [new_year - timedelta(days=7 + 182) + timedelta(days=d) for d in range(365)]
    rush_rate = sum(per_day[d] for d in rush) / len(rush)
    year_rate = sum(per_day[d] for d in year) / len(year)
    # The configured boost is 1.7x-2.4x; without any seasonality this ratio is 1.0 ± ~0.15.
    assert rush_rate > 1.3 * year_rate
    holidays = [new_year + timedelta(days=d) for d in range(13)]
    assert sum(per_day[d] for d in holidays) / len(holidays) < year_rate


def test_statuses_include_a_few_percent_refunds_and_cancellations(big_shop: ShopSummary) -> None:
    orders = _read(big_shop, "orders")
    share = {k: v / len(orders) for k, v in Counter(row["status"] for row in orders).items()}
    assert set(share) == {"paid", "refunded", "partially_refunded", "cancelled"}
    assert share["paid"] > 0.85
    assert all(0.003 < share[s] < 0.08 for s in ("refunded", "partially_refunded", "cancelled"))
    assert {row["channel"] for row in orders} == {"web", "app", "instagram"}


def test_baskets_follow_co_purchase_affinity(big_shop: ShopSummary) -> None:
    kind_of = {f"P{i + 1:04d}": item.kind for i, item in enumerate(_catalogue_order())}
    baskets: dict[str, set[str]] = defaultdict(set)
    for line in _read(big_shop, "order_lines"):
        baskets[line["order_id"]].add(kind_of[line["product_id"]])
    with_laptop = [b for b in baskets.values() if "laptop" in b]
    without = [b for b in baskets.values() if "laptop" not in b]
    share_with = sum("computer_accessory" in b for b in with_laptop) / len(with_laptop)
    share_without = sum("computer_accessory" in b for b in without) / len(without)
    assert share_with > 3 * share_without


def _catalogue_order() -> list[Item]:
    """ITEMS as the generator numbers them: grouped by kind in the order kinds are declared."""
    rank = {kind.slug: i for i, kind in enumerate(KINDS)}
    return sorted(ITEMS, key=lambda item: rank[item.kind])


def test_products_are_viewed_and_carted_before_they_are_bought(shop: ShopSummary) -> None:
    events = _read(shop, "events")
    seen: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    for event in events:
        assert ISO_UTC.match(event["occurred_at"])
        properties = json.loads(event["properties"])
        assert isinstance(properties, dict)
        assert event["type"] in {"page_view", "product_view", "add_to_cart"}
        if event["type"] != "page_view":
            seen[(event["customer_id"], event["type"], properties["product_id"])].append(
                _when(event["occurred_at"])
            )
    orders = {row["order_id"]: row for row in _read(shop, "orders")}
    lines = _read(shop, "order_lines")
    for line in lines:
        order = orders[line["order_id"]]
        placed = _when(order["placed_at"])
        for kind in ("product_view", "add_to_cart"):
            times = seen[(order["customer_id"], kind, line["product_id"])]
            assert any(t <= placed for t in times), (kind, line)
    views = sum(1 for event in events if event["type"] == "product_view")
    assert views > 2 * len(lines)
    browsers = {event["customer_id"] for event in events}
    buyers = {order["customer_id"] for order in orders.values()}
    assert browsers - buyers  # some people only browse


def test_events_happen_after_signup_and_inside_the_window(shop: ShopSummary) -> None:
    signup = {row["customer_id"]: _when(row["signup_at"]) for row in _read(shop, "customers")}
    last: dict[str, datetime] = {}
    for event in _read(shop, "events"):
        when = _when(event["occurred_at"])
        assert signup[event["customer_id"]] <= when < shop.horizon_end
        assert when >= last.get(event["customer_id"], when)  # sorted per customer
        last[event["customer_id"]] = when


def test_tickets_are_few_and_their_times_and_scores_make_sense(big_shop: ShopSummary) -> None:
    tickets = _read(big_shop, "tickets")
    assert 1 <= len(tickets) / 2000 * 100 <= 12  # a few per hundred customers
    for ticket in tickets:
        opened = _when(ticket["opened_at"])
        assert opened < big_shop.horizon_end
        assert ticket["channel"] in {"chat", "phone", "email", "telegram"}
        assert PERSIAN.match(ticket["subject"])
        assert ticket["satisfaction"] in {"", "1", "2", "3", "4", "5"}
        if ticket["first_response_at"]:
            assert _when(ticket["first_response_at"]) >= opened
        if ticket["resolved_at"]:
            assert _when(ticket["resolved_at"]) >= _when(ticket["first_response_at"])
        if ticket["satisfaction"]:
            assert ticket["resolved_at"]
    assert any(ticket["satisfaction"] for ticket in tickets)
    assert any(not ticket["satisfaction"] for ticket in tickets)


def test_it_refuses_impossible_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate_shop(tmp_path, customers=0, seed=1)
    with pytest.raises(ValueError, match="seed"):
        generate_shop(tmp_path, customers=10, seed=-1)
    with pytest.raises(ValueError, match="conversion"):
        ShopParameters(conversion=1.5)
    assert not list(tmp_path.iterdir())


def test_the_end_date_moves_the_window(tmp_path: Path) -> None:
    summary = generate_shop(tmp_path, customers=50, seed=1, end=date(2025, 6, 30))
    signups = [_when(row["signup_at"]) for row in _read(summary, "customers")]
    assert max(signups) < datetime(2025, 6, 30, 20, 30, tzinfo=UTC)
    assert min(signups) >= datetime(2023, 6, 30, 20, 30, tzinfo=UTC)


def test_the_generator_does_not_import_django() -> None:
    code = "import sys, vafa.customers.synthetic; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_cli_writes_the_files_and_summarises_them(tmp_path: Path) -> None:
    from vafa.cli import app

    out = tmp_path / "shop"
    result = CliRunner().invoke(
        app, ["generate-shop", "--customers", "40", "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{name}.csv" for name in CANONICAL_COLUMNS
    )
    assert "customers.csv" in result.output and "40" in result.output
    reference = generate_shop(tmp_path / "api", customers=40, seed=2)
    assert _digests(out) == _digests(reference.out_dir)


def test_the_cli_rejects_a_malformed_end_date(tmp_path: Path) -> None:
    from vafa.cli import app

    result = CliRunner().invoke(
        app, ["generate-shop", "--customers", "5", "--out", str(tmp_path), "--end", "2026-02-30"]
    )
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())
