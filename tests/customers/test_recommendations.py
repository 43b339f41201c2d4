"""Recommended products and social proof from the shop's own orders (refreshed nightly)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from vafa.customers.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductSimilarity,
)
from vafa.customers.recommendations import (
    customer_recommendations,
    recommendations_refresh,
    social_proof,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def buy(customer: Customer, products: list[Product], *, days_ago: int, n: int,
        status: str = OrderStatus.PAID) -> None:
    order = Order.objects.create(
        external_id=f"O{n}", customer=customer, placed_at=NOW - timedelta(days=days_ago),
        status=status, total=Decimal(100), currency="IRT",
    )
    for line_no, product in enumerate(products, 1):
        OrderLine.objects.create(order=order, line_no=line_no, product=product, quantity=1,
                                 unit_price=Decimal(50))


@pytest.fixture
def shop() -> dict[str, Product]:
    products = {name: Product.objects.create(external_id=name, name=name, price=Decimal(90_000),
                                             currency="IRT")
                for name in ("tea", "cup", "honey", "saffron", "old")}
    people = [Customer.objects.create(external_id=f"c{i}") for i in range(5)]
    ana, bahram, sara, reza, lost = people
    buy(ana, [products["tea"], products["cup"], products["honey"]], days_ago=3, n=1)
    buy(bahram, [products["tea"], products["cup"]], days_ago=10, n=2)
    buy(bahram, [products["honey"]], days_ago=40, n=3)
    buy(sara, [products["tea"]], days_ago=5, n=4)
    buy(reza, [products["cup"], products["saffron"]], days_ago=50, n=5)
    buy(lost, [products["old"], products["tea"]], days_ago=400, n=6)  # older than a year
    buy(lost, [products["saffron"], products["honey"]], days_ago=2, n=7,
        status=OrderStatus.REFUNDED)  # refunded: not a purchase
    return products


def test_the_refresh_stores_similar_products_and_the_months_buyers(shop: dict[str, Product]) -> None:
    recommendations_refresh(now=NOW)

    pairs = {(s.product.external_id, s.similar.external_id): s.co_buyers
             for s in ProductSimilarity.objects.select_related("product", "similar")}
    # tea·cup: ana, bahram; tea·honey, cup·honey: ana, bahram; the rest below two co-buyers
    assert pairs == {("tea", "cup"): 2, ("cup", "tea"): 2, ("tea", "honey"): 2,
                     ("honey", "tea"): 2, ("cup", "honey"): 2, ("honey", "cup"): 2}
    buyers = dict(Product.objects.values_list("external_id", "recent_buyers"))
    assert buyers == {"tea": 3, "cup": 2, "honey": 1, "saffron": 0, "old": 0}

    recommendations_refresh(now=NOW)  # a second run replaces, never adds
    assert ProductSimilarity.objects.count() == 6


def test_a_customer_is_offered_what_their_purchases_point_at_with_social_proof(
    shop: dict[str, Product]
) -> None:
    recommendations_refresh(now=NOW)
    sara = Customer.objects.get(external_id="c2")  # bought tea only

    found = customer_recommendations(sara.pk, language="fa", k=2)

    # honey (cosine 2/√6 = 0.82) before cup (2/3); never tea, which she owns
    assert [p["name"] for p in found["recommended_products"]] == ["honey", "cup"]
    assert found["recommended_products"][0]["price"] == Decimal(90_000)
    assert found["social_proof"] == ""  # honey had one buyer this month: no proof


def test_without_history_the_months_best_sellers_fill_in(shop: dict[str, Product]) -> None:
    recommendations_refresh(now=NOW)
    newcomer = Customer.objects.create(external_id="new")

    found = customer_recommendations(newcomer.pk, language="en", k=2)

    assert [p["name"] for p in found["recommended_products"]] == ["tea", "cup"]
    assert found["social_proof"] == "3 customers bought this in the last 30 days"
    persian = customer_recommendations(newcomer.pk, language="fa", k=2)["social_proof"]
    assert "۳" in persian and "3" not in persian


def test_social_proof_groups_thousands_as_each_language_writes_them() -> None:
    product = Product(external_id="p", name="tea", recent_buyers=1240)

    assert social_proof(product, language="en") == "1,240 customers bought this in the last 30 days"
    assert social_proof(product, language="fa").startswith("۱٬۲۴۰ ")
    assert social_proof(product, language="ar").startswith("١٬٢٤٠ ")
