"""Simulating a rule on past orders before switching it on, without writing anything."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from tests.loyalty.conftest import T0, make_base_rule, make_order, make_program, set_status
from vafa.customers.models import Category, Customer, OrderLine, OrderStatus, Product
from vafa.loyalty.errors import SimulationUnsupported
from vafa.loyalty.models import EarningRule, LedgerEntry, Member, RuleKind
from vafa.loyalty.selectors import rule_simulate

QUARTER = (T0, T0 + timedelta(days=90))


@pytest.fixture
def shop(zahra: Customer, omid: Customer) -> None:
    make_program(point_value=Decimal(100))
    make_order(zahra, 1_000_000, placed_at=T0 + timedelta(days=1))
    refunded = make_order(zahra, 2_000_000, placed_at=T0 + timedelta(days=2))
    set_status(refunded, OrderStatus.PARTIALLY_REFUNDED, refunded=500_000)
    make_order(omid, 3_000_000, placed_at=T0 + timedelta(days=3))
    make_order(omid, 9_000_000, placed_at=T0 + timedelta(days=4), status=OrderStatus.CANCELLED)
    make_order(omid, 9_000_000, placed_at=T0 - timedelta(days=1))  # before the quarter


def test_a_switched_off_base_rule_shows_its_points_and_cost_for_last_quarter(shop: None) -> None:
    rule = make_base_rule(active=False)
    result = rule_simulate(rule=rule, start=QUARTER[0], end=QUARTER[1])
    # 100 + (200 − 50 refunded) + 300 = 550 points; at 100 Toman a point, 55,000 Toman.
    assert (result.orders, result.members, result.points) == (3, 2, 550)
    assert (result.cost, result.currency) == (Decimal(55_000), "IRT")
    assert not LedgerEntry.objects.exists() and not Member.objects.exists()


def test_a_multiplier_counts_only_what_it_adds_to_the_active_rules(
    zahra: Customer, program: object
) -> None:
    make_base_rule()
    books = Category.objects.create(name="Books")
    novels = Category.objects.create(name="Novels", parent=books)
    book = Product.objects.create(external_id="P1", name="Divan", category=novels)
    toy = Product.objects.create(external_id="P2", name="Kite")
    order = make_order(zahra, 1_000_000, placed_at=T0 + timedelta(days=1))
    OrderLine.objects.create(
        order=order, line_no=1, product=book, quantity=2, unit_price=Decimal(300_000)
    )
    OrderLine.objects.create(
        order=order, line_no=2, product=toy, quantity=1, unit_price=Decimal(400_000)
    )
    double_books = EarningRule.objects.create(
        name="books ×2", kind=RuleKind.CATEGORY_MULTIPLIER, multiplier=Decimal(2), category=books
    )
    result = rule_simulate(rule=double_books, start=QUARTER[0], end=QUARTER[1])
    assert result.points == 60  # the books' 60 base points, once more


def test_a_first_order_bonus_counts_only_first_orders(shop: None) -> None:
    make_base_rule()
    bonus = EarningRule.objects.create(name="welcome", kind=RuleKind.FIRST_ORDER, points=50)
    result = rule_simulate(rule=bonus, start=QUARTER[0], end=QUARTER[1])
    assert (result.points, result.members) == (50, 1)  # omid's first order was before


def test_a_signup_and_a_birthday_bonus_count_signups_and_birthdays(
    zahra: Customer, omid: Customer, program: object
) -> None:
    Customer.objects.filter(pk=zahra.pk).update(
        signup_at=T0 + timedelta(days=5), birth_date=date(1990, 4, 10)
    )
    Customer.objects.filter(pk=omid.pk).update(birth_date=date(1985, 12, 1))
    signup = EarningRule.objects.create(name="hello", kind=RuleKind.SIGNUP, points=100)
    birthday = EarningRule.objects.create(name="hbd", kind=RuleKind.BIRTHDAY, points=30)
    assert rule_simulate(rule=signup, start=QUARTER[0], end=QUARTER[1]).points == 100
    assert rule_simulate(rule=birthday, start=QUARTER[0], end=QUARTER[1]).points == 30


def test_rules_whose_events_have_no_history_cannot_be_simulated(program: object) -> None:
    review = EarningRule.objects.create(name="review", kind=RuleKind.REVIEW, points=10)
    with pytest.raises(SimulationUnsupported) as info:
        rule_simulate(rule=review, start=QUARTER[0], end=QUARTER[1])
    assert info.value.code == "simulation_unsupported"


def test_the_admin_simulates_the_selected_rules_on_the_last_three_months(
    zahra: Customer, program: object, admin_client: Client
) -> None:
    make_order(zahra, 2_000_000, placed_at=timezone.now() - timedelta(days=30))
    make_order(zahra, 9_000_000, placed_at=timezone.now() - timedelta(days=200))  # too old
    base = make_base_rule(active=False)  # 1 point per 10,000: 200 points, 20,000 Toman
    review = EarningRule.objects.create(name="reviews", kind=RuleKind.REVIEW, points=20)

    answer = admin_client.post(
        "/admin/loyalty/earningrule/",
        {"action": "simulate", "_selected_action": [base.pk, review.pk]},
        follow=True, HTTP_ACCEPT_LANGUAGE="en",
    )

    shown = [str(m) for m in answer.context["messages"]]
    assert shown[0] == (f"“{base.name}” would have cost 200 points (20,000 IRT) over the last "
                        "3 months: 1 members, 1 orders.")
    assert "cannot be simulated" in shown[1]
    assert not LedgerEntry.objects.exists()  # nothing written
    in_persian = admin_client.post(
        "/admin/loyalty/earningrule/",
        {"action": "simulate", "_selected_action": [base.pk]},
        follow=True, HTTP_ACCEPT_LANGUAGE="fa",
    )
    assert [str(m) for m in in_persian.context["messages"]] == [
        "«base» در ۳ ماه گذشته ۲۰۰ امتیاز (۲۰٬۰۰۰ IRT) هزینه داشت: ۱ عضو، ۱ سفارش."
    ]


def test_an_incomplete_rule_is_refused_in_the_admin_with_a_translated_reason(
    program: object, admin_client: Client
) -> None:
    form = {"name": "broken", "kind": RuleKind.BASE_RATE, "points": "1", "per_amount": "0",
            "currency": "IRT", "multiplier": "1", "cap_period_days": "30"}
    for language, reason in (
        ("en", "A points-per-amount rule needs its points, the amount (more than zero) and "
               "the currency."),
        ("fa", "قاعدهٔ امتیاز به ازای مبلغ، امتیاز، مبلغ (بیشتر از صفر) و واحد پول را لازم دارد."),
    ):
        answer = admin_client.post("/admin/loyalty/earningrule/add/", form,
                                   HTTP_ACCEPT_LANGUAGE=language)
        assert answer.status_code == 200  # the form again, with the reason
        page = answer.content.decode()
        assert reason in page and "loyalty_rule_base_rate_complete" not in page
    assert not EarningRule.objects.exists()
