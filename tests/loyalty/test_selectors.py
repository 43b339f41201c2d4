"""What a member sees: balance with expiring points, history, and endowed progress."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.loyalty.conftest import T0, make_order, make_program
from vafa.customers.models import Customer
from vafa.loyalty.models import ExpiryPolicy, ProgramSettings
from vafa.loyalty.selectors import (
    member_balance,
    member_history,
    member_reward_progress,
    program_settings,
)
from vafa.loyalty.services import order_sync_points, points_adjust, points_redeem

pytestmark = pytest.mark.usefixtures("base_rule")


def gift(customer: Customer, points: int, at: datetime, key: str) -> None:
    points_adjust(
        customer=customer, points=points, reason="gift", actor="user:1", idempotency_key=key, now=at
    )


def test_the_balance_lists_points_expiring_within_30_60_and_90_days(zahra: Customer) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=3)
    gift(zahra, 10, T0, "a")  # expires T0 + 3 months (92 days)
    gift(zahra, 20, T0 + timedelta(days=20), "b")
    gift(zahra, 40, T0 + timedelta(days=60), "c")
    balance = member_balance(customer=zahra, now=T0 + timedelta(days=70))
    # Expiries fall 22, 42 and 83 days after the moment we look.
    assert (balance.expiring_30, balance.expiring_60, balance.expiring_90) == (10, 30, 70)
    assert [e.points for e in balance.expiring] == [10, 20, 40]
    assert balance.expiring[0].expires_at == T0 + timedelta(days=92)
    assert (balance.available, balance.pending, balance.debt, balance.balance) == (70, 0, 0, 70)


def test_a_customer_who_never_joined_has_an_empty_balance(omid: Customer) -> None:
    balance = member_balance(customer=omid, now=T0)
    assert (balance.available, balance.pending, balance.balance, balance.expiring) == (0, 0, 0, ())
    assert member_history(customer=omid) == []


def test_history_is_newest_first_and_pages_on(zahra: Customer) -> None:
    for i in range(5):
        gift(zahra, i + 1, T0, f"k{i}")
    first_page = member_history(customer=zahra, limit=2)
    assert [e.points for e in first_page] == [5, 4]
    second = member_history(customer=zahra, limit=2, before_id=first_page[-1].pk)
    assert [e.points for e in second] == [3, 2]


def test_a_new_member_starts_with_a_head_start_toward_the_first_reward(
    zahra: Customer, omid: Customer
) -> None:
    # Program: first reward at 1000 points, head start 200 → shown as "200 of 1200".
    fresh = member_reward_progress(customer=omid, now=T0)
    assert (fresh.current, fresh.goal, fresh.head_start, fresh.ready) == (200, 1200, 200, False)

    order = make_order(zahra, 5_000_000)  # 500 points, pending for 14 days
    order_sync_points(order=order, now=T0)
    pending = member_reward_progress(customer=zahra, now=T0)
    assert (pending.current, pending.goal, pending.ready) == (700, 1200, False)

    gift(zahra, 500, T0 + timedelta(days=15), "top-up")
    ready = member_reward_progress(customer=zahra, now=T0 + timedelta(days=15))
    assert (ready.current, ready.goal, ready.ready) == (1200, 1200, True)


def test_the_head_start_is_shown_not_credited_and_ends_with_the_first_redemption(
    zahra: Customer,
) -> None:
    gift(zahra, 1000, T0, "a")
    assert member_balance(customer=zahra, now=T0).available == 1000  # no 200 extra points
    points_redeem(customer=zahra, points=1000, idempotency_key="r", now=T0)
    gift(zahra, 300, T0, "b")
    after = member_reward_progress(customer=zahra, now=T0)
    assert (after.current, after.goal, after.head_start) == (300, 1000, 0)


@pytest.mark.django_db
def test_program_settings_have_defaults_before_the_merchant_saves_any() -> None:
    ProgramSettings.objects.all().delete()
    settings = program_settings()
    assert settings.pk == 1 and settings._state.adding
    assert (settings.return_window_days, settings.expiry_policy) == (14, ExpiryPolicy.ROLLING)
