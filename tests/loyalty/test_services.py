"""The ledger's rules, each as a sentence, through the services (time frozen with `now=`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum

from tests.loyalty.conftest import T0, make_order, make_program, set_status
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.loyalty.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    InvalidPoints,
    ReasonRequired,
)
from vafa.loyalty.models import (
    AppendOnlyError,
    EarningRule,
    EntryKind,
    ExpiryPolicy,
    LedgerEntry,
    Lot,
    Member,
    RuleKind,
)
from vafa.loyalty.selectors import ledger_reconcile, member_balance
from vafa.loyalty.services import (
    birthdays_award,
    order_sync_points,
    points_adjust,
    points_award,
    points_expire,
    points_redeem,
)

pytestmark = pytest.mark.usefixtures("base_rule")
LATER = T0 + timedelta(days=15)  # past the 14-day return window


def ledger_sum(customer: Customer) -> int:
    return (
        LedgerEntry.objects.filter(member__customer=customer).aggregate(s=Sum("points"))["s"] or 0
    )


def earn(
    customer: Customer, total: int, *, placed_at: datetime = T0, **kwargs: Any
) -> tuple[Order, list[LedgerEntry]]:
    order = make_order(customer, total, placed_at=placed_at, **kwargs)
    return order, order_sync_points(order=order, now=placed_at)


def test_an_order_earns_pending_points_that_become_available_after_the_return_window(
    zahra: Customer,
) -> None:
    _, entries = earn(zahra, 1_000_000)
    assert [(e.kind, e.points) for e in entries] == [(EntryKind.EARN, 100)]
    at_once = member_balance(customer=zahra, now=T0)
    assert (at_once.available, at_once.pending) == (0, 100)
    assert at_once.next_available_at == T0 + timedelta(days=14)
    later = member_balance(customer=zahra, now=LATER)
    assert (later.available, later.pending) == (100, 0)


def test_points_exclude_shipping_and_round_down(zahra: Customer) -> None:
    _, entries = earn(zahra, 1_259_999, shipping=200_000)  # 105.9999 points on the goods
    assert entries[0].points == 105


def test_an_order_still_awaiting_payment_earns_nothing(zahra: Customer) -> None:
    _, entries = earn(zahra, 1_000_000, status=OrderStatus.PENDING)
    assert entries == []
    assert ledger_sum(zahra) == 0


def test_syncing_an_unchanged_order_twice_books_nothing(zahra: Customer) -> None:
    order, _ = earn(zahra, 1_000_000)
    assert order_sync_points(order=order, now=T0) == []
    assert LedgerEntry.objects.count() == 1


def test_the_first_order_bonus_is_paid_once_when_an_earlier_order_arrives_later(
    zahra: Customer,
) -> None:
    EarningRule.objects.create(name="welcome", kind=RuleKind.FIRST_ORDER, points=100, active=True)
    _, first_seen = earn(zahra, 1_000_000, placed_at=LATER)  # the newest order arrives first
    assert sum(e.points for e in first_seen) == 200  # 100 for the goods, 100 welcome
    _, backfilled = earn(zahra, 1_000_000, placed_at=T0)  # then an older one, e.g. an import
    assert sum(e.points for e in backfilled) == 100  # the goods only
    assert ledger_sum(zahra) == 300


def test_a_full_refund_reverses_all_the_points_of_its_order(zahra: Customer) -> None:
    order, _ = earn(zahra, 1_000_000)
    set_status(order, OrderStatus.REFUNDED, refunded=1_000_000)
    entries = order_sync_points(order=order, now=LATER)
    assert [(e.kind, e.points) for e in entries] == [(EntryKind.REVERSE, -100)]
    assert ledger_sum(zahra) == 0
    assert member_balance(customer=zahra, now=LATER).available == 0


def test_a_partial_refund_reverses_points_pro_rata_rounded_down(zahra: Customer) -> None:
    order, _ = earn(zahra, 1_000_000)  # 100 points
    set_status(order, OrderStatus.PARTIALLY_REFUNDED, refunded=333_333)
    first = order_sync_points(order=order, now=LATER)
    assert [e.points for e in first] == [-33]  # 33.3333 rounded down: never over-reverse
    set_status(order, OrderStatus.PARTIALLY_REFUNDED, refunded=500_000)
    second = order_sync_points(order=order, now=LATER)
    assert [e.points for e in second] == [-17]  # cumulative target 50, not 33 + 16
    set_status(order, OrderStatus.REFUNDED, refunded=1_000_000)
    order_sync_points(order=order, now=LATER)
    assert ledger_sum(zahra) == 0


def test_a_refund_after_spending_leaves_a_debt_that_the_next_earning_pays_first(
    zahra: Customer,
) -> None:
    order, _ = earn(zahra, 1_000_000)
    points_redeem(customer=zahra, points=100, idempotency_key="r1", now=LATER)
    set_status(order, OrderStatus.REFUNDED, refunded=1_000_000)
    order_sync_points(order=order, now=LATER)
    owed = member_balance(customer=zahra, now=LATER)
    assert (owed.debt, owed.balance, ledger_sum(zahra)) == (100, -100, -100)

    earn(zahra, 300_000, placed_at=LATER)  # 30 points: all go to the debt
    partly = member_balance(customer=zahra, now=LATER + timedelta(days=15))
    assert (partly.debt, partly.available, partly.balance) == (70, 0, -70)

    earn(zahra, 1_000_000, placed_at=LATER + timedelta(days=1))  # 100 points: 70 pay the rest
    paid = member_balance(customer=zahra, now=LATER + timedelta(days=16))
    assert (paid.debt, paid.available, paid.balance) == (0, 30, 30)
    assert ledger_sum(zahra) == 30
    assert ledger_reconcile() == []


def test_a_reversal_takes_other_points_before_leaving_a_debt(zahra: Customer) -> None:
    first, _ = earn(zahra, 1_000_000)
    earn(zahra, 500_000, placed_at=T0 + timedelta(days=1))
    points_redeem(customer=zahra, points=100, idempotency_key="r1", now=LATER + timedelta(days=1))
    set_status(first, OrderStatus.REFUNDED, refunded=1_000_000)
    order_sync_points(order=first, now=LATER + timedelta(days=1))
    after = member_balance(customer=zahra, now=LATER + timedelta(days=1))
    # 150 earned, 100 spent, 100 reversed: the 50 left are taken, 50 are owed, nothing spendable.
    assert (after.available, after.debt, after.balance) == (0, 50, -50)


def test_cancelling_an_order_cancels_its_pending_points(zahra: Customer) -> None:
    earn(zahra, 2_000_000)  # another order's pending points must stay
    order, _ = earn(zahra, 1_000_000, placed_at=T0 + timedelta(hours=1))
    set_status(order, OrderStatus.CANCELLED)
    entries = order_sync_points(order=order, now=T0 + timedelta(days=2))
    assert [(e.kind, e.points, e.reason) for e in entries] == [
        (EntryKind.REVERSE, -100, "order cancelled")
    ]
    lot = Lot.objects.get(order=order)
    assert lot.remaining == 0
    assert member_balance(customer=zahra, now=T0 + timedelta(days=2)).pending == 200


def test_spending_takes_the_soonest_expiring_lots_first(zahra: Customer) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=6)
    old, _ = earn(zahra, 1_000_000, placed_at=T0)  # expires T0 + 6 months
    new, _ = earn(zahra, 1_000_000, placed_at=T0 + timedelta(days=30))
    bonus = points_adjust(
        customer=zahra,
        points=50,
        reason="apology",
        actor="user:1",
        idempotency_key="a1",
        now=T0 + timedelta(days=60),
    )  # expires last
    entry = points_redeem(
        customer=zahra, points=120, idempotency_key="r1", now=T0 + timedelta(days=60)
    )
    taken = {a.lot.order_id: a.points for a in entry.allocations.select_related("lot")}
    assert taken == {old.pk: 100, new.pk: 20}
    assert Lot.objects.get(entry=bonus).remaining == 50


def test_expired_points_cannot_be_spent(zahra: Customer) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=1)
    earn(zahra, 1_000_000)
    expiry = T0 + timedelta(days=31)  # 1 April 12:00 is one month after 1 March 12:00
    assert member_balance(customer=zahra, now=expiry).available == 0
    with pytest.raises(InsufficientPoints):
        points_redeem(customer=zahra, points=1, idempotency_key="r1", now=expiry)
    # The failed attempt rolled back; the periodic run books the expiry once.
    run = points_expire(now=expiry)
    assert (run.members, run.lots, run.points) == (1, 1, 100)
    assert points_expire(now=expiry + timedelta(days=1)).lots == 0
    assert ledger_sum(zahra) == 0
    assert ledger_reconcile() == []


def test_a_refund_after_expiry_does_not_charge_the_member_twice(zahra: Customer) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=1)
    order, _ = earn(zahra, 1_000_000)
    points_redeem(customer=zahra, points=40, idempotency_key="r1", now=LATER)
    points_expire(now=T0 + timedelta(days=40))  # the other 60 expire
    set_status(order, OrderStatus.REFUNDED, refunded=1_000_000)
    entries = order_sync_points(order=order, now=T0 + timedelta(days=41))
    # Only the 40 the member enjoyed are taken back (as debt); the 60 already left by expiry.
    assert [e.points for e in entries] == [-40]
    assert member_balance(customer=zahra, now=T0 + timedelta(days=41)).debt == 40


def test_a_replayed_idempotency_key_returns_the_first_entry_and_changes_nothing(
    zahra: Customer,
) -> None:
    earn(zahra, 1_000_000)
    first = points_redeem(customer=zahra, points=30, idempotency_key="checkout-7", now=LATER)
    again = points_redeem(
        customer=zahra, points=30, idempotency_key="checkout-7", now=LATER + timedelta(days=1)
    )
    assert again.pk == first.pk
    assert LedgerEntry.objects.filter(kind=EntryKind.REDEEM).count() == 1
    assert member_balance(customer=zahra, now=LATER).available == 70


def test_a_key_reused_for_another_amount_is_refused(zahra: Customer) -> None:
    earn(zahra, 1_000_000)
    points_redeem(customer=zahra, points=30, idempotency_key="k", now=LATER)
    with pytest.raises(IdempotencyConflict) as info:
        points_redeem(customer=zahra, points=31, idempotency_key="k", now=LATER)
    assert info.value.code == "idempotency_conflict"


def test_redeeming_more_than_available_raises_insufficient_points(zahra: Customer) -> None:
    earn(zahra, 1_000_000)
    with pytest.raises(InsufficientPoints) as info:
        points_redeem(customer=zahra, points=101, idempotency_key="r", now=LATER)
    assert info.value.as_dict()["code"] == "insufficient_points"
    assert info.value.status == 409
    assert (info.value.requested, info.value.available) == (101, 100)
    assert not LedgerEntry.objects.filter(kind=EntryKind.REDEEM).exists()


def test_pending_points_cannot_be_spent(zahra: Customer) -> None:
    earn(zahra, 1_000_000)
    with pytest.raises(InsufficientPoints):
        points_redeem(customer=zahra, points=1, idempotency_key="r", now=T0 + timedelta(days=13))


@pytest.mark.parametrize("points", [0, -5, 2.5, True])
def test_it_refuses_a_redemption_that_is_not_a_positive_whole_number(
    zahra: Customer, points: object
) -> None:
    with pytest.raises(InvalidPoints):
        points_redeem(customer=zahra, points=points, idempotency_key="r", now=T0)  # type: ignore[arg-type]


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_adjustment_without_a_reason_is_refused(zahra: Customer, reason: str) -> None:
    with pytest.raises(ReasonRequired) as info:
        points_adjust(
            customer=zahra, points=10, reason=reason, actor="user:1", idempotency_key="a", now=T0
        )
    assert info.value.field == "reason"
    assert not LedgerEntry.objects.exists()


def test_an_adjustment_without_an_actor_is_refused(zahra: Customer) -> None:
    with pytest.raises(ReasonRequired) as info:
        points_adjust(
            customer=zahra, points=10, reason="gift", actor="", idempotency_key="a", now=T0
        )
    assert info.value.field == "actor"


def test_the_database_itself_refuses_an_adjustment_without_a_reason(zahra: Customer) -> None:
    member = Member.objects.create(customer=zahra)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            member=member,
            kind=EntryKind.ADJUST,
            points=5,
            balance_after=5,
            occurred_at=T0,
            created_at=T0,
            idempotency_key="x",
            actor="user:1",
            reason="",
        )


def test_the_database_refuses_a_lot_spent_below_zero(zahra: Customer) -> None:
    earn(zahra, 1_000_000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Lot.objects.update(remaining=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Lot.objects.update(remaining=101)


def test_the_database_refuses_a_second_entry_with_the_same_key(zahra: Customer) -> None:
    entry = points_adjust(
        customer=zahra, points=10, reason="gift", actor="user:1", idempotency_key="same", now=T0
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            member=entry.member,
            kind=EntryKind.ADJUST,
            points=10,
            balance_after=20,
            occurred_at=T0,
            created_at=T0,
            idempotency_key="same",
            actor="user:1",
            reason="gift",
        )


def test_an_adjustment_records_who_made_it_and_why(zahra: Customer) -> None:
    entry = points_adjust(
        customer=zahra,
        points=25,
        reason="late delivery",
        actor="user:7",
        idempotency_key="a",
        now=T0,
    )
    assert (entry.actor, entry.reason, entry.kind) == ("user:7", "late delivery", "adjust")
    assert member_balance(customer=zahra, now=T0).available == 25


def test_a_negative_adjustment_beyond_the_balance_leaves_a_debt(zahra: Customer) -> None:
    points_adjust(
        customer=zahra, points=20, reason="gift", actor="user:1", idempotency_key="a1", now=T0
    )
    points_adjust(
        customer=zahra, points=-50, reason="fraud", actor="user:1", idempotency_key="a2", now=T0
    )
    after = member_balance(customer=zahra, now=T0)
    assert (after.available, after.debt, after.balance) == (0, 30, -30)
    assert ledger_reconcile() == []


def test_ledger_entries_cannot_be_changed_or_deleted(zahra: Customer) -> None:
    entry = points_adjust(
        customer=zahra, points=10, reason="gift", actor="user:1", idempotency_key="a", now=T0
    )
    entry.points = 1000
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_one_members_writes_never_touch_another(zahra: Customer, omid: Customer) -> None:
    earn(zahra, 1_000_000)
    points_adjust(
        customer=omid, points=5, reason="gift", actor="user:1", idempotency_key="a", now=T0
    )
    points_redeem(
        customer=zahra, points=100, idempotency_key="a", now=LATER
    )  # same key, other member
    assert member_balance(customer=omid, now=LATER).available == 5


def test_the_inactivity_policy_keeps_points_alive_while_the_member_is_active(
    zahra: Customer,
) -> None:
    make_program(expiry_policy=ExpiryPolicy.INACTIVITY, expiry_months=3)
    earn(zahra, 1_000_000)  # expires T0 + 3 months unless she comes back
    earn(zahra, 100_000, placed_at=T0 + timedelta(days=80))  # activity: expiry moves
    lot = Lot.objects.get(order__total=Decimal(1_000_000))
    assert lot.expires_at is not None
    assert lot.expires_at > T0 + timedelta(days=160)
    assert points_expire(now=T0 + timedelta(days=120)).lots == 0
    assert points_expire(now=T0 + timedelta(days=200)).points == 110


def test_a_signup_bonus_is_credited_once_per_reference(zahra: Customer) -> None:
    EarningRule.objects.create(name="welcome", kind="signup", active=True, points=50)
    first = points_award(customer=zahra, kind="signup", reference="zahra", now=T0)
    again = points_award(customer=zahra, kind="signup", reference="zahra", now=T0)
    assert first is not None and again is not None and first.pk == again.pk
    assert member_balance(customer=zahra, now=T0).available == 50


def test_a_bonus_without_a_rule_gives_nothing(zahra: Customer) -> None:
    assert points_award(customer=zahra, kind="review", reference="r1", now=T0) is None


def bonuses(customer: Customer) -> list[int]:
    return list(LedgerEntry.objects.filter(member__customer=customer, kind=EntryKind.EARN)
                .order_by("id").values_list("points", flat=True))


def test_members_get_the_birthday_bonus_on_their_birthday_once_a_year(
    zahra: Customer, omid: Customer
) -> None:
    EarningRule.objects.create(name="birthday", kind=RuleKind.BIRTHDAY, points=200, active=True)
    leapling = Customer.objects.create(external_id="leap", birth_date=date(2000, 2, 29))
    Customer.objects.filter(pk=zahra.pk).update(birth_date=date(1990, 4, 10))
    Customer.objects.filter(pk=omid.pk).update(birth_date=date(1985, 4, 11))
    tehran = ZoneInfo("Asia/Tehran")  # the shop's zone in the tests' settings
    on_the_day = datetime(2026, 4, 10, 0, 30, tzinfo=tehran)  # still 9 April in UTC

    assert birthdays_award(now=on_the_day) == 1
    assert birthdays_award(now=on_the_day + timedelta(hours=5)) == 1  # a rerun gives nothing new
    assert ledger_sum(zahra) == 200 and ledger_sum(omid) == 0
    assert LedgerEntry.objects.get(member__customer=zahra).reason == "birthday"
    birthdays_award(now=datetime(2027, 4, 10, 12, tzinfo=tehran))  # a year later, again
    assert bonuses(zahra) == [200, 200]

    birthdays_award(now=datetime(2027, 2, 28, 12, tzinfo=tehran))  # 2027 has no 29 February
    assert bonuses(leapling) == [200]
    birthdays_award(now=datetime(2028, 2, 28, 12, tzinfo=tehran))
    assert bonuses(leapling) == [200]  # 2028 has one: the day after
    birthdays_award(now=datetime(2028, 2, 29, 12, tzinfo=tehran))
    assert bonuses(leapling) == [200, 200]


def test_without_a_birthday_rule_nobody_gets_a_member_row(zahra: Customer) -> None:
    Customer.objects.filter(pk=zahra.pk).update(birth_date=date(1990, 4, 10))
    assert birthdays_award(now=datetime(2026, 4, 10, 12, tzinfo=ZoneInfo("Asia/Tehran"))) == 0
    assert not Member.objects.exists()
