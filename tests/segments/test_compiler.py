"""The segment compiler: each filter, all/any/exclude, and validation that names the field.

A small fixed cast of customers is built by hand so every expected membership can be read off
the fixture below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from vafa.core.errors import NotFoundError, ValidationError
from vafa.customers.models import (
    Category,
    Consent,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
)
from vafa.insights.models import AnalysisRun, CustomerScore, Segment
from vafa.insights.segments import (
    segment_count,
    segment_delete,
    segment_queryset,
    segment_recount,
    segment_save,
    segment_tally,
    validate_definition,
)
from vafa.loyalty.models import Member, Tier

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def _order(customer: Customer, key: str, days_ago: float, total: str,
           status: str = OrderStatus.PAID, refunded: str = "0",
           product: Product | None = None) -> Order:
    order = Order.objects.create(
        external_id=key, customer=customer, placed_at=NOW - timedelta(days=days_ago),
        status=status, total=Decimal(total), refunded_amount=Decimal(refunded), currency="IRR")
    if product is not None:
        OrderLine.objects.create(order=order, line_no=1, product=product, quantity=1,
                                 unit_price=Decimal(total))
    return order


@pytest.fixture
def cast() -> dict[str, Any]:
    """Five customers:

    - ana: Tehran, female, born 1990-06-15 (36 on NOW), champion VIP, gold tier, 3 paid
      orders (10, 40, 200 days ago; 100+200+300 = 600), bought shoes (a child of clothing),
      email consent granted, source instagram.
    - bob: Shiraz, male, born 2000-06-16 (25 on NOW, 26 the next day), at-risk, silver tier,
      one paid order 100 days ago (50) and a refunded one 5 days ago; SMS consent, email refused.
    - cyd: Tehran, no birth date, lost, p_alive 0.05, one partially refunded order 400 days ago
      (total 80, refunded 30: kept 50), bought a book.
    - dan: Isfahan, never ordered, no score, no membership.
    - eve: Tehran, female, born 2008-02-29 (18 on NOW), new, one paid order exactly 30 days ago.
    """
    run = AnalysisRun.objects.create(status=AnalysisRun.Status.DONE)
    gold = Tier.objects.create(name="Gold", rank=2)
    silver = Tier.objects.create(name="Silver", rank=1)
    clothing = Category.objects.create(name="Clothing")
    shoes = Category.objects.create(name="Shoes", parent=clothing)
    books = Category.objects.create(name="Books")
    sneaker = Product.objects.create(external_id="p1", name="Sneaker", category=shoes)
    novel = Product.objects.create(external_id="p2", name="Novel", category=books)

    ana = Customer.objects.create(external_id="ana", city="Tehran", gender="female",
                                  birth_date=date(1990, 6, 15), acquisition_source="instagram")
    bob = Customer.objects.create(external_id="bob", city="Shiraz", gender="male",
                                  birth_date=date(2000, 6, 16))
    cyd = Customer.objects.create(external_id="cyd", city="Tehran")
    Customer.objects.create(external_id="dan", city="Isfahan")
    eve = Customer.objects.create(external_id="eve", city="Tehran", gender="female",
                                  birth_date=date(2008, 2, 29))

    _order(ana, "a1", 10, "100", product=sneaker)
    _order(ana, "a2", 40, "200")
    _order(ana, "a3", 200, "300")
    _order(bob, "b1", 100, "50")
    _order(bob, "b2", 5, "70", status=OrderStatus.REFUNDED, refunded="70")
    _order(cyd, "c1", 400, "80", status=OrderStatus.PARTIALLY_REFUNDED, refunded="30",
           product=novel)
    _order(eve, "e1", 30, "20")

    def score(customer: Customer, segment: str, p_alive: float, clv: str,
              vip: bool = False) -> None:
        CustomerScore.objects.create(
            customer=customer, run=run, rfm_segment=segment, r_score=3, f_score=3, m_score=3,
            loyalty_label="regular", p_alive=p_alive, predicted_clv=Decimal(clv), vip=vip)

    score(ana, "champions", 0.95, "5000", vip=True)
    score(bob, "at_risk", 0.40, "300")
    score(cyd, "lost", 0.05, "10")
    score(eve, "new", 0.80, "900")
    Member.objects.create(customer=ana, tier=gold)
    Member.objects.create(customer=bob, tier=silver)
    Consent.objects.create(customer=ana, channel="email", granted=True, source="test")
    Consent.objects.create(customer=bob, channel="email", granted=False, source="test")
    Consent.objects.create(customer=bob, channel="sms", granted=True, source="test")
    return {"gold": gold, "silver": silver, "clothing": clothing, "shoes": shoes, "books": books}


def names(definition: dict[str, Any]) -> set[str]:
    """Who matches; the live count (which may count score or stored-total rows instead of
    customers) must agree with the queryset on every definition."""
    found = set(segment_queryset(definition, now=NOW).values_list("external_id", flat=True))
    assert segment_tally(definition, now=NOW).count == len(found)
    return found


def rule(**kwargs: Any) -> dict[str, Any]:
    return {"rules": [kwargs]}


def test_an_empty_definition_is_every_customer(cast: dict[str, Any]) -> None:
    assert names({}) == {"ana", "bob", "cyd", "dan", "eve"}
    assert segment_count({}, now=NOW) == 5


@pytest.mark.parametrize(("definition", "expected"), [
    (rule(field="rfm_segment", values=["champions", "at_risk"]), {"ana", "bob"}),
    (rule(field="rfm_segment", values=["champions"], exclude=True), {"bob", "cyd", "dan", "eve"}),
    (rule(field="loyalty_label", values=["regular"]), {"ana", "bob", "cyd", "eve"}),
    (rule(field="city", values=["Tehran"]), {"ana", "cyd", "eve"}),
    (rule(field="gender", values=["female"]), {"ana", "eve"}),
    (rule(field="acquisition_source", values=["instagram"]), {"ana"}),
    (rule(field="age", min=18, max=25), {"bob", "eve"}),
    (rule(field="age", min=26), {"ana"}),
    (rule(field="age", max=17), set()),
    (rule(field="clv", min="300", max="900"), {"bob", "eve"}),
    (rule(field="p_alive", max=0.4), {"bob", "cyd"}),
    (rule(field="vip", value=True), {"ana"}),
    (rule(field="vip", value=False), {"bob", "cyd", "dan", "eve"}),
    (rule(field="consent", values=["email"]), {"ana"}),
    (rule(field="consent", values=["email", "sms"]), {"ana", "bob"}),
    (rule(field="consent", values=["email"], exclude=True), {"bob", "cyd", "dan", "eve"}),
    (rule(field="order_count", min=2), {"ana"}),
    (rule(field="order_count", min=1, max=1), {"bob", "cyd", "eve"}),
    (rule(field="order_count", max=0), {"dan"}),
    (rule(field="order_count", min=0), {"ana", "bob", "cyd", "dan", "eve"}),
    (rule(field="order_count", min=0, exclude=True), set()),
    (rule(field="total_spent", min="50", max="50"), {"bob", "cyd"}),
    (rule(field="total_spent", max="49.999"), {"dan", "eve"}),
    (rule(field="total_spent", min="600"), {"ana"}),
])
def test_each_filter_selects_the_customers_it_describes(
    cast: dict[str, Any], definition: dict[str, Any], expected: set[str]
) -> None:
    assert names(definition) == expected


@pytest.mark.parametrize(("bounds", "expected"), [
    # Last purchase, counting only paid and partially refunded orders (bob's refund 5 days ago
    # is not a purchase): ana 10, eve 30, bob 100, cyd 400 days ago; dan never.
    ({"max": 30}, {"ana", "eve"}),
    ({"max": 29}, {"ana"}),
    ({"min": 30}, {"eve", "bob", "cyd"}),
    ({"min": 31, "max": 365}, {"bob"}),
    ({"min": 11}, {"eve", "bob", "cyd"}),
])
def test_last_purchase_days_ago_uses_the_latest_purchase(
    cast: dict[str, Any], bounds: dict[str, int], expected: set[str]
) -> None:
    assert names(rule(field="last_purchase_days", **bounds)) == expected


def test_last_purchase_dates_are_inclusive_days_in_the_shop_zone(cast: dict[str, Any]) -> None:
    # bob's last purchase: NOW − 100 days = 2026-03-07 12:00 UTC (15:30 in Tehran).
    assert names(rule(field="last_purchase_date", **{"from": "2026-03-07",
                                                     "to": "2026-03-07"})) == {"bob"}
    assert names(rule(field="last_purchase_date", to="2026-03-06")) == {"cyd"}
    assert names(rule(field="last_purchase_date", **{"from": "2026-05-01"})) == {"ana", "eve"}


def test_categories_include_their_subcategories(cast: dict[str, Any]) -> None:
    assert names(rule(field="category", values=[cast["clothing"].pk])) == {"ana"}
    assert names(rule(field="category", values=[cast["books"].pk])) == {"cyd"}
    assert names(rule(field="category", values=[cast["shoes"].pk, cast["books"].pk])) == {
        "ana", "cyd"}


def test_tiers_match_members_in_them(cast: dict[str, Any]) -> None:
    assert names(rule(field="tier", values=[cast["gold"].pk])) == {"ana"}
    assert names(rule(field="tier", values=[cast["gold"].pk], exclude=True)) == {
        "bob", "cyd", "dan", "eve"}


def test_rules_combine_with_all_any_and_nested_groups(cast: dict[str, Any]) -> None:
    tehran = {"field": "city", "values": ["Tehran"]}
    female = {"field": "gender", "values": ["female"]}
    valuable = {"field": "clv", "min": "1000"}
    assert names({"match": "all", "rules": [tehran, female]}) == {"ana", "eve"}
    assert names({"match": "any", "rules": [female, {"field": "city", "values": ["Shiraz"]}]}) \
        == {"ana", "bob", "eve"}
    nested = {"match": "all", "rules": [
        tehran, {"match": "any", "rules": [valuable, {"field": "p_alive", "max": 0.1}]}]}
    assert names(nested) == {"ana", "cyd"}
    excluded = {"rules": [tehran, {"match": "any", "exclude": True, "rules": [valuable]}]}
    assert names(excluded) == {"cyd", "eve"}


def test_validation_returns_a_canonical_document() -> None:
    clean = validate_definition({"rules": [
        {"field": "clv", "min": "۱۰۰۰", "max": 2500.50},
        {"field": "order_count", "min": "2"},
        {"field": "city", "values": " Tehran "},
        {"field": "last_purchase_date", "from": "۱۴۰۵/۰۱/۰۱", "to": "2026-03-31"},
    ]})
    assert clean == {"match": "all", "rules": [
        {"field": "clv", "min": "1000", "max": "2500.5"},
        {"field": "order_count", "min": 2},
        {"field": "city", "values": ["Tehran"]},
        # 1 Farvardin 1405 (Jalali, Persian digits) is 21 March 2026.
        {"field": "last_purchase_date", "from": "2026-03-21", "to": "2026-03-31"},
    ]}


@pytest.mark.parametrize(("definition", "field"), [
    ({"match": "some"}, "match"),
    ({"rules": {}}, "rules"),
    ({"rules": [{"field": "shoe_size", "values": ["42"]}]}, "rules.0.field"),
    ({"rules": [{"values": ["x"]}]}, "rules.0.field"),
    ({"rules": [{"field": "city", "values": []}]}, "rules.0.values"),
    ({"rules": [{"field": "rfm_segment", "values": ["champions", "heroes"]}]}, "rules.0.values.1"),
    ({"rules": [{"field": "clv"}]}, "rules.0.min"),
    ({"rules": [{"field": "clv", "min": "abc"}]}, "rules.0.min"),
    ({"rules": [{"field": "clv", "min": 10, "max": 5}]}, "rules.0.max"),
    ({"rules": [{"field": "p_alive", "max": 1.5}]}, "rules.0.max"),
    ({"rules": [{"field": "order_count", "min": 1.5}]}, "rules.0.min"),
    ({"rules": [{"field": "age", "min": -1}]}, "rules.0.min"),
    ({"rules": [{"field": "last_purchase_date", "from": "2026-13-01"}]}, "rules.0.from"),
    ({"rules": [{"field": "last_purchase_date", "from": "2026-02-01", "to": "2026-01-01"}]},
     "rules.0.to"),
    ({"rules": [{"field": "vip", "value": "yes"}]}, "rules.0.value"),
    ({"rules": [{"field": "city", "values": ["x"], "colour": "red"}]}, "rules.0.colour"),
    ({"rules": [{"field": "tier", "values": [999_999]}]}, "rules.0.values.0"),
    ({"rules": [{"rules": [{"rules": [{"rules": []}]}]}]}, "rules.0.rules.0.rules.0"),
    ({"exclude": True}, "exclude"),
])
def test_it_refuses_a_bad_definition_naming_the_field(
    definition: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_definition(definition)
    assert caught.value.field == field


def test_a_saved_segment_keeps_its_canonical_filters_and_count(cast: dict[str, Any]) -> None:
    segment = segment_save(name=" Tehran women ", definition={"rules": [
        {"field": "city", "values": ["Tehran"]}, {"field": "gender", "values": ["female"]}]},
        now=NOW, created_by="shirin")
    assert (segment.name, segment.last_count, segment.last_counted_at) == ("Tehran women", 2, NOW)
    assert segment.definition["match"] == "all"
    Customer.objects.filter(external_id="cyd").update(gender="female")
    assert segment_recount(segment_id=segment.pk, now=NOW) == 3
    with pytest.raises(ValidationError) as caught:
        segment_save(name="Tehran women", definition={}, now=NOW)
    assert caught.value.field == "name"
    renamed = segment_save(name="All", definition={}, now=NOW, segment_id=segment.pk)
    assert (renamed.pk, renamed.last_count) == (segment.pk, 5)
    segment_delete(segment_id=segment.pk)
    assert not Segment.objects.exists()
    with pytest.raises(NotFoundError):
        segment_delete(segment_id=segment.pk)
