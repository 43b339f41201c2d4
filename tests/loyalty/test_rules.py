"""The earning rules as pure functions: no database, exact decimals, whole points."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.loyalty.conftest import T0
from vafa.loyalty.models import RuleKind
from vafa.loyalty.rules import (
    Caps,
    LineFacts,
    OrderFacts,
    RuleSpec,
    quote_bonus,
    quote_order,
    reversal_target,
)

BASE = RuleSpec(id=1, kind=RuleKind.BASE_RATE, points=1, per_amount=Decimal(10_000), currency="IRT")
BOOKS, NOVELS, TOYS = 10, 11, 20  # category ids: novels are a sub-category of books


def order(
    total: int, *lines: LineFacts, shipping: int = 0, first: bool = False, currency: str = "IRT"
) -> OrderFacts:
    return OrderFacts(
        placed_at=T0,
        currency=currency,
        total=Decimal(total),
        shipping=Decimal(shipping),
        lines=lines,
        is_first_order=first,
    )


def line(amount: int, *categories: int, product: int | None = None) -> LineFacts:
    return LineFacts(product_id=product, category_ids=frozenset(categories), amount=Decimal(amount))


def test_the_base_rate_gives_one_point_per_ten_thousand_toman_rounded_down() -> None:
    assert quote_order(order(1_259_999), [BASE]).points == 125


def test_shipping_earns_no_points() -> None:
    assert quote_order(order(1_200_000, shipping=200_000), [BASE]).points == 100


def test_an_order_in_a_currency_without_a_rate_earns_nothing() -> None:
    assert quote_order(order(1_000_000, currency="USD"), [BASE]).points == 0


def test_a_category_multiplier_applies_to_lines_of_its_sub_categories() -> None:
    double_books = RuleSpec(
        id=2, kind=RuleKind.CATEGORY_MULTIPLIER, multiplier=Decimal(2), category_id=BOOKS
    )
    novel, toy = line(600_000, NOVELS, BOOKS), line(400_000, TOYS)
    quote = quote_order(order(1_000_000, novel, toy), [BASE, double_books])
    assert quote.points == 60 * 2 + 40
    assert quote.rule_points(2) == 60


def test_the_largest_matching_multiplier_wins_and_multipliers_do_not_stack() -> None:
    books = RuleSpec(
        id=2, kind=RuleKind.CATEGORY_MULTIPLIER, multiplier=Decimal(2), category_id=BOOKS
    )
    bestseller = RuleSpec(
        id=3, kind=RuleKind.PRODUCT_MULTIPLIER, multiplier=Decimal(3), product_id=99
    )
    quote = quote_order(
        order(1_000_000, line(1_000_000, BOOKS, product=99)), [BASE, books, bestseller]
    )
    assert quote.points == 300  # ×3, not ×6


def test_three_equal_thirds_of_an_order_make_whole_points() -> None:
    # Decimal division would give 3 × 33.33…3 = 99.99…9 and lose a point; the maths is exact.
    thirds = (line(100_000, BOOKS), line(100_000, TOYS), line(100_000, NOVELS))
    assert quote_order(order(1_000_000, *thirds), [BASE]).points == 100


def test_a_discount_is_shared_over_the_lines() -> None:
    double_toys = RuleSpec(
        id=2, kind=RuleKind.CATEGORY_MULTIPLIER, multiplier=Decimal(2), category_id=TOYS
    )
    # Lines list 1,000,000 but the customer paid 500,000: each line earns on half its price.
    quote = quote_order(
        order(500_000, line(500_000, TOYS), line(500_000, BOOKS)), [BASE, double_toys]
    )
    assert quote.points == 25 * 2 + 25


def test_the_tier_multiplier_scales_spend_points_but_not_the_first_order_bonus() -> None:
    bonus = RuleSpec(id=5, kind=RuleKind.FIRST_ORDER, points=50)
    quote = quote_order(order(1_000_000, first=True), [BASE, bonus], tier_multiplier=Decimal("1.5"))
    assert quote.points == 150 + 50
    assert {c.label: c.points for c in quote.components} == {
        "base_rate": 100,
        "tier": 50,
        "first_order": 50,
    }


def test_a_first_order_bonus_is_given_only_on_the_first_order() -> None:
    bonus = RuleSpec(id=5, kind=RuleKind.FIRST_ORDER, points=50)
    assert quote_order(order(0, first=True), [bonus]).points == 50
    assert quote_order(order(0, first=False), [bonus]).points == 0


def test_a_rule_counts_only_while_active_and_inside_its_dates() -> None:
    off = RuleSpec(
        id=1,
        kind=RuleKind.BASE_RATE,
        points=1,
        per_amount=Decimal(10_000),
        currency="IRT",
        active=False,
    )
    later = RuleSpec(
        id=1,
        kind=RuleKind.BASE_RATE,
        points=1,
        per_amount=Decimal(10_000),
        currency="IRT",
        starts_at=T0 + timedelta(days=1),
    )
    ended = RuleSpec(
        id=1,
        kind=RuleKind.BASE_RATE,
        points=1,
        per_amount=Decimal(10_000),
        currency="IRT",
        ends_at=T0,
    )  # the end is exclusive
    for rule in (off, later, ended):
        assert quote_order(order(1_000_000), [rule]).points == 0


def test_a_rules_caps_limit_its_own_part() -> None:
    capped = RuleSpec(
        id=1,
        kind=RuleKind.BASE_RATE,
        points=1,
        per_amount=Decimal(10_000),
        currency="IRT",
        cap_per_order=80,
        cap_per_period=300,
    )
    assert quote_order(order(1_000_000), [capped]).points == 80
    assert quote_order(order(1_000_000), [capped], rule_usage={1: 250}).points == 50
    assert quote_order(order(1_000_000), [capped], rule_usage={1: 400}).points == 0


def test_the_program_caps_limit_the_total() -> None:
    per_order = quote_order(order(5_000_000), [BASE], caps=Caps(per_order=300))
    assert per_order.points == 300
    assert per_order.components[-1].label == "cap_per_order"
    per_period = quote_order(
        order(5_000_000), [BASE], caps=Caps(per_period=1000, used_in_period=900)
    )
    assert per_period.points == 100


def test_a_bonus_event_gives_the_fixed_points_of_its_rules() -> None:
    review = RuleSpec(id=7, kind=RuleKind.REVIEW, points=20)
    signup = RuleSpec(id=8, kind=RuleKind.SIGNUP, points=100)
    assert quote_bonus(RuleKind.REVIEW, [review, signup], when=T0).points == 20
    assert quote_bonus(RuleKind.BIRTHDAY, [review, signup], when=T0).points == 0


@settings(max_examples=200, derandomize=True, database=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=5),
    multipliers=st.lists(
        st.sampled_from(["0", "0.5", "1.25", "2", "3.33"]), min_size=5, max_size=5
    ),
    tier=st.sampled_from(["0.5", "1", "1.1", "1.5", "2"]),
    total=st.integers(min_value=0, max_value=10**9),
)
def test_the_parts_add_up_to_the_rounded_down_exact_total(
    amounts: list[int], multipliers: list[str], tier: str, total: int
) -> None:
    rules = [BASE] + [
        RuleSpec(id=10 + i, kind=RuleKind.CATEGORY_MULTIPLIER, multiplier=Decimal(m), category_id=i)
        for i, m in enumerate(multipliers)
    ]
    lines = tuple(line(amount, i) for i, amount in enumerate(amounts))
    quote = quote_order(order(total, *lines), rules, tier_multiplier=Decimal(tier))
    gross = sum(amounts)
    exact = sum(
        Fraction(total * a, gross * 10_000) * Fraction(multipliers[i])
        for i, a in enumerate(amounts)
    ) * Fraction(tier)
    assert quote.points == sum(c.points for c in quote.components)
    assert quote.points == math.floor(exact)  # never a point more than the rules earned
    assert quote.points >= 0


def test_a_partial_refund_reverses_the_rounded_down_share_of_the_cumulative_refund() -> None:
    total = Decimal(1_000_000)
    assert reversal_target(100, total=total, refunded=Decimal(333_333), fully=False) == 33
    assert reversal_target(100, total=total, refunded=Decimal(999_999), fully=False) == 99
    assert reversal_target(100, total=total, refunded=total, fully=False) == 100
    assert reversal_target(100, total=total, refunded=Decimal(0), fully=True) == 100
    assert reversal_target(7, total=Decimal(0), refunded=Decimal(0), fully=False) == 0
