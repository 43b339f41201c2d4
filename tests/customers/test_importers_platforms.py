"""WooCommerce and Shopify exports through `vafa import … --format`: the same rules, mapped."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from vafa.cli import app
from vafa.customers.importers.sources import iter_json_items
from vafa.customers.models import Consent, Customer, Order, OrderLine, Product

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures"


def run_import(*args: str) -> Result:
    return CliRunner().invoke(app, ["import", *args])


def fixture(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    return path


def test_woocommerce_customers_then_orders_import_with_mapped_statuses(tmp_path: Path) -> None:
    customers = run_import("customers", str(fixture(tmp_path, "woocommerce_customers.json")),
                           "--format", "woocommerce")
    orders = run_import("orders", str(fixture(tmp_path, "woocommerce_orders.json")),
                        "--format", "woocommerce")

    assert customers.exit_code == 0, customers.output
    assert orders.exit_code == 0, orders.output
    ali = Customer.objects.get(external_id="26")
    assert (ali.first_name, ali.last_name, ali.phone) == ("علی", "رضایی", "+989123456789")
    # date_created_gmt is UTC although it carries no offset.
    assert ali.signup_at == datetime(2025, 1, 5, 8, 30, tzinfo=UTC)
    status = {o.external_id: (o.status, o.refunded_amount, o.customer.external_id)
              for o in Order.objects.select_related("customer")}
    assert status == {
        "727": ("paid", Decimal(0), "26"),
        "728": ("partially_refunded", Decimal(200000), "guest:guest.buyer@example.com"),
        "729": ("cancelled", Decimal(0), "27"),
    }
    first = Order.objects.get(external_id="727")
    assert (first.total, first.shipping, first.channel) == (
        Decimal(1245000), Decimal(45000), "checkout"
    )
    line = OrderLine.objects.get(order=first)
    assert (line.product.external_id, line.quantity, line.unit_price) == ("93", 2, Decimal(600000))
    assert Product.objects.get(external_id="deleted:محصول حذف‌شده").name == "محصول حذف‌شده"
    assert "customers created from orders: 1" in orders.stdout


def test_reimporting_a_woocommerce_export_changes_nothing(tmp_path: Path) -> None:
    for entity, name in (("customers", "woocommerce_customers.json"),
                         ("orders", "woocommerce_orders.json")):
        path = fixture(tmp_path, name)
        assert run_import(entity, str(path), "--format", "woocommerce").exit_code == 0
        second = run_import(entity, str(path), "--format", "woocommerce")
        assert "0 created, 0 updated" in second.stdout, second.output
    assert (Order.objects.count(), OrderLine.objects.count()) == (3, 3)


def test_a_bad_woocommerce_item_names_its_line_and_the_platform_field(tmp_path: Path) -> None:
    items = json.loads((FIXTURES / "woocommerce_orders.json").read_text())
    items[1]["total"] = "lots"
    items[2]["line_items"][0]["quantity"] = 0
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(items, ensure_ascii=False, indent=2))
    lines = [line for line, *_ in iter_json_items(path.read_text(), ())]

    result = run_import("orders", str(path), "--format", "woocommerce")

    assert result.exit_code == 2
    assert f"{path}:{lines[1]}: [1].total: not an amount" in result.stderr
    assert f"{path}:{lines[2]}: [2].line_items[0].quantity: must be at least 1" in result.stderr
    assert Order.objects.count() == 0


def test_shopify_customers_from_json_carry_their_marketing_consent(tmp_path: Path) -> None:
    result = run_import("customers", str(fixture(tmp_path, "shopify_customers.json")),
                        "--format", "shopify")

    assert result.exit_code == 0, result.output
    bob = Customer.objects.get(external_id="207119551")
    assert (bob.country, bob.city, bob.attributes) == ("US", "Louisville", {"tags": "vip, newsletter"})
    consents = dict(Consent.objects.filter(customer=bob).values_list("channel", "granted"))
    assert consents == {"email": True, "sms": False}
    sara = Customer.objects.get(external_id="207119552")
    assert (sara.last_name, sara.phone) == ("احمدی", "+989131234567")
    assert not Consent.objects.filter(customer=sara).exists()  # "pending" decides nothing


def test_shopify_customer_csv_export_is_read(tmp_path: Path) -> None:
    result = run_import("customers", str(fixture(tmp_path, "shopify_customers.csv")),
                        "--format", "shopify")

    assert result.exit_code == 0, result.output
    bob = Customer.objects.get(external_id="7012345678901")
    assert (bob.phone, bob.email, bob.attributes) == (
        "+16136120707", "bob.norman@mail.example.com", {"tags": "vip, newsletter"}
    )
    sara = Customer.objects.get(external_id="7012345678902")
    assert sara.phone == "+989131234567"  # from "Default Address Phone"
    assert sara.attributes == {"note": "مشتری وفادار"}
    assert dict(Consent.objects.filter(customer=sara).values_list("channel", "granted")) == {
        "email": False, "sms": True,
    }


def test_a_bad_shopify_csv_cell_is_named_by_its_column(tmp_path: Path) -> None:
    text = (FIXTURES / "shopify_customers.csv").read_text().replace(",yes,", ",maybe,", 1)
    path = tmp_path / "customers_export.csv"
    path.write_text(text)

    result = run_import("customers", str(path), "--format", "shopify")

    assert f"{path}:2: Accepts Email Marketing: expected yes/no" in result.stderr


def test_shopify_orders_map_status_refunds_shipping_and_custom_lines(tmp_path: Path) -> None:
    run_import("customers", str(fixture(tmp_path, "shopify_customers.json")), "--format", "shopify")

    result = run_import("orders", str(fixture(tmp_path, "shopify_orders.json")),
                        "--format", "shopify")

    assert result.exit_code == 0, result.output
    first = Order.objects.get(external_id="450789469")
    assert (first.status, first.total, first.discount, first.shipping, first.refunded_amount,
            first.currency) == ("partially_refunded", Decimal("598.94"), Decimal("10.00"),
                                Decimal("4.00"), Decimal("41.94"), "USD")
    assert first.placed_at == datetime(2025, 1, 10, 16, 0, tzinfo=UTC)
    lines = list(first.lines.order_by("line_no").values_list("product__external_id", "quantity"))
    assert lines == [("632910392", 1), ("632910392", 2), ("custom:Gift wrapping", 1)]
    cancelled = Order.objects.get(external_id="450789470")
    assert (cancelled.status, cancelled.refunded_amount) == ("cancelled", Decimal(0))


def test_a_format_without_that_export_is_refused(tmp_path: Path) -> None:
    path = fixture(tmp_path, "woocommerce_orders.json")

    result = run_import("events", str(path), "--format", "woocommerce")

    assert result.exit_code == 2
    assert "WooCommerce exports customers, orders, products, not events" in result.stderr


def test_invalid_json_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"id": 1},\n  {"id": 2,,}\n]\n')

    result = run_import("customers", str(path), "--format", "woocommerce")

    assert result.exit_code == 2
    assert f"{path}:3: json: invalid JSON" in result.stderr


def test_json_items_are_found_in_arrays_wrappers_and_single_objects() -> None:
    wrapped = '{\n "orders": [\n  {"id": 1},\n  {"id": 2}\n ],\n "count": 2\n}'
    single = '{"order": {"id": 3}}'
    bare = '{"id": 4, "line_items": []}'

    assert [(line, prefix, item["id"]) for line, prefix, item, _ in
            iter_json_items(wrapped, ("orders", "order"))] == [
        (3, "orders[0].", 1), (4, "orders[1].", 2)]
    assert [item["id"] for *_, item, _ in iter_json_items(single, ("orders", "order"))] == [3]
    assert [item["id"] for *_, item, _ in iter_json_items(bare, ("orders", "order"))] == [4]
