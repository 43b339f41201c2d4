"""Random histories of one member, checked after every step (hypothesis state machine).

Steps: orders, partial and full refunds, cancellations, re-syncs, redemptions, their replays
and their cancellations, manual adjustments, expiry runs and clock jumps, under each expiry policy.
Redemptions, their replays and adjustments run either as the API's optimistic write runs them
(PostgreSQL: unlocked read, one guarded statement, the locked path when it gives up) or on the
locked path, drawn per step, so both paths are held to the same invariants. After every step the
ledger must balance: cached balance = Σ entries = Σ lot remaining − debt, no lot spent twice,
every redemption took only points that were available and unexpired at that moment, no expired
or pending point can be spent now, and each order's reversals follow the refund rules.

Each example runs in a savepoint rolled back at the end, so examples never see each other.
Derandomized and small (25 examples × 20 steps) to stay fast and reproducible.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from itertools import count
from typing import Any, TypeVar

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.loyalty.conftest import T0, make_base_rule, make_order, make_program, set_status
from vafa.core import batch
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.loyalty.errors import InsufficientPoints
from vafa.loyalty.models import (
    Allocation,
    Calendar,
    EntryKind,
    ExpiryPolicy,
    LedgerEntry,
    Lot,
    Member,
)
from vafa.loyalty.rules import reversal_target
from vafa.loyalty.selectors import ledger_reconcile, member_balance
from vafa.loyalty.services import (
    order_sync_points,
    points_adjust,
    points_expire,
    points_redeem,
    points_redeem_cancel,
)

_examples = count()
T = TypeVar("T")


def _written(optimistic: bool, write: Callable[[], T]) -> T:
    """Run a service write as `idempotent_response` runs the API's earn and redeem when
    `optimistic` (on SQLite there is no batch: the plain write), else as is."""
    if optimistic:
        try:
            with batch.write(optimistic=True):
                done = write()
            _optimistic["written"] += 1
            return done
        except batch.NeedsLock:
            _optimistic["gave up"] += 1  # nothing written: the locked path below
    return write()


_optimistic: Counter[str] = Counter()


class LedgerMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        make_base_rule()
        self.customer = Customer.objects.create(external_id=f"sm-{next(_examples)}")
        self.now = T0
        self.redemptions: list[tuple[str, int, int]] = []  # key, points, entry id
        self.keys = count()

    def teardown(self) -> None:
        try:
            assert ledger_reconcile() == []  # the CLI's check agrees at the end of the story
        finally:
            transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # -- steps -------------------------------------------------------------------------------

    @initialize(
        policy=st.sampled_from([p.value for p in ExpiryPolicy]),
        window=st.sampled_from([0, 7, 14]),
    )
    def configure(self, policy: str, window: int) -> None:
        make_program(
            expiry_policy=policy,
            expiry_months=2,
            return_window_days=window,
            expiry_calendar=Calendar.GREGORIAN,
        )

    @rule(
        target=orders,
        tens_of_thousands=st.integers(min_value=1, max_value=60),
        then_days=st.sampled_from([0, 3, 20, 70]),
    )
    def buy(self, tens_of_thousands: int, then_days: int) -> int:
        """A paid order; then the clock moves on (orders are the commonest step, so they carry
        time forward too, past return windows and expiries)."""
        order = make_order(self.customer, tens_of_thousands * 10_000 + 3_333, placed_at=self.now)
        order_sync_points(order=order, now=self.now)
        self.now += timedelta(days=then_days)
        return order.pk

    @rule(order_id=orders, percent=st.integers(min_value=1, max_value=99))
    def refund_partially(self, order_id: int, percent: int) -> None:
        order = Order.objects.get(pk=order_id)
        if order.status in (OrderStatus.REFUNDED, OrderStatus.CANCELLED):
            return
        refunded = max(order.refunded_amount, (order.total * percent / 100).quantize(Decimal(1)))
        status = OrderStatus.REFUNDED if refunded >= order.total else OrderStatus.PARTIALLY_REFUNDED
        set_status(order, status, refunded=refunded)
        order_sync_points(order=order, now=self.now)

    @rule(order_id=orders)
    def refund_fully(self, order_id: int) -> None:
        order = Order.objects.get(pk=order_id)
        if order.status == OrderStatus.CANCELLED:
            return
        set_status(order, OrderStatus.REFUNDED, refunded=order.total)
        order_sync_points(order=order, now=self.now)

    @rule(order_id=orders)
    def cancel(self, order_id: int) -> None:
        order = Order.objects.get(pk=order_id)
        set_status(order, OrderStatus.CANCELLED)
        order_sync_points(order=order, now=self.now)

    @rule(order_id=orders)
    def sync_again(self, order_id: int) -> None:
        assert order_sync_points(order=Order.objects.get(pk=order_id), now=self.now) == []

    @rule(points=st.integers(min_value=1, max_value=120), optimistic=st.booleans())
    def redeem(self, points: int, optimistic: bool = False) -> None:
        available = member_balance(customer=self.customer, now=self.now).available
        key = f"r{next(self.keys)}"
        try:
            entry = _written(optimistic, lambda: points_redeem(
                customer=self.customer, points=points, idempotency_key=key, now=self.now
            ))
        except InsufficientPoints:
            assert points > available
            return
        assert points <= available
        self.redemptions.append((key, points, entry.pk))

    @rule()
    def redeem_everything(self) -> None:
        available = member_balance(customer=self.customer, now=self.now).available
        if available:
            self.redeem(available)

    @precondition(lambda self: bool(self.redemptions))
    @rule(data=st.data(), optimistic=st.booleans())
    def replay_a_redemption(self, data: Any, optimistic: bool) -> None:
        key, points, entry_id = data.draw(st.sampled_from(self.redemptions))
        before = (LedgerEntry.objects.count(), Member.objects.get(customer=self.customer).balance)
        again = _written(optimistic, lambda: points_redeem(
            customer=self.customer, points=points, idempotency_key=key, now=self.now
        ))
        assert again.pk == entry_id
        after = (LedgerEntry.objects.count(), Member.objects.get(customer=self.customer).balance)
        assert after == before

    @precondition(lambda self: bool(self.redemptions))
    @rule(data=st.data())
    def cancel_a_redemption(self, data: Any) -> None:
        key, points, _ = data.draw(st.sampled_from(self.redemptions))
        returned = points_redeem_cancel(
            customer=self.customer,
            idempotency_key=key,
            reason="changed her mind",
            actor="user:1",
            now=self.now,
        )
        assert returned.points == points  # once, however often it is cancelled

    @rule(points=st.integers(min_value=-80, max_value=80).filter(bool), optimistic=st.booleans())
    def support_adjusts(self, points: int, optimistic: bool) -> None:
        key = f"a{next(self.keys)}"
        _written(optimistic, lambda: points_adjust(
            customer=self.customer,
            points=points,
            reason="support",
            actor="user:1",
            idempotency_key=key,
            now=self.now,
        ))

    @rule()
    def run_expiry(self) -> None:
        points_expire(now=self.now)
        assert points_expire(now=self.now).lots == 0  # a second run finds nothing

    @rule(days=st.sampled_from([1, 6, 15, 40, 70, 400]))
    def let_time_pass(self, days: int) -> None:
        self.now += timedelta(days=days)

    # -- invariants --------------------------------------------------------------------------
    # One read per table, checked in Python: hundreds of steps must stay fast.

    @invariant()
    def the_ledger_balances_and_no_point_is_spent_twice(self) -> None:
        member = Member.objects.filter(customer=self.customer).first()
        if member is None:
            return
        entries = {
            pk: (kind, points, created_at, order_id)
            for pk, kind, points, created_at, order_id in LedgerEntry.objects.filter(
                member=member
            ).values_list("pk", "kind", "points", "created_at", "order_id")
        }
        lots = {
            pk: (points, remaining, available_at, expires_at, entry_id)
            for pk, points, remaining, available_at, expires_at, entry_id in Lot.objects.filter(
                member=member
            ).values_list("pk", "points", "remaining", "available_at", "expires_at", "entry_id")
        }
        allocations = list(
            Allocation.objects.filter(lot__member=member).values_list(
                "lot_id", "entry_id", "points"
            )
        )
        ledger = sum(points for _, points, _, _ in entries.values())
        assert member.balance == ledger  # the cache is the ledger
        assert ledger == sum(lot[1] for lot in lots.values()) - member.debt

        from_lot: dict[int, int] = {}
        to_entry: dict[int, int] = {}
        for lot_id, entry_id, points in allocations:
            from_lot[lot_id] = from_lot.get(lot_id, 0) + points
            to_entry[entry_id] = to_entry.get(entry_id, 0) + points
            kind, _, created_at, _ = entries[entry_id]
            if kind == EntryKind.REDEEM:  # spent only what was available and unexpired then
                _, _, available_at, expires_at, _ = lots[lot_id]
                assert available_at <= created_at
                assert expires_at is None or created_at < expires_at
        for lot_id, (points, remaining, _, _, _) in lots.items():
            assert 0 <= remaining == points - from_lot.get(lot_id, 0)  # never spent twice
        owed = 0
        for entry_id, (_, points, _, _) in entries.items():
            if points < 0:
                assert to_entry.get(entry_id, 0) <= -points
                owed += -points - to_entry.get(entry_id, 0)
        assert owed == member.debt
        live = [
            lot for lot in lots.values() if lot[1] > 0 and (lot[3] is None or lot[3] > self.now)
        ]
        if member.debt:  # a debt exists only when no live point is left to pay it
            assert live == []

        # No expired or pending point is spendable: the selector agrees with the lots.
        spendable = sum(lot[1] for lot in live if lot[2] <= self.now)
        assert member_balance(customer=self.customer, now=self.now).available == spendable

        # Reversals follow the refund rules.
        expired_from: dict[int, int] = {}
        for lot_id, entry_id, points in allocations:
            if entries[entry_id][0] == EntryKind.EXPIRE:
                earn_id = lots[lot_id][4]
                expired_from[earn_id] = expired_from.get(earn_id, 0) + points
        for order in Order.objects.filter(customer=self.customer):
            earned = [
                (pk, e) for pk, e in entries.items() if e[3] == order.pk and e[0] == EntryKind.EARN
            ]
            if not earned:
                continue
            earn_id, (_, earned_points, _, _) = earned[0]
            reversed_ = -sum(
                e[1] for e in entries.values() if e[3] == order.pk and e[0] == EntryKind.REVERSE
            )
            assert 0 <= reversed_ <= earned_points
            if order.status in (OrderStatus.REFUNDED, OrderStatus.CANCELLED):
                # Everything came back, except what had already left by expiry.
                assert reversed_ + expired_from.get(earn_id, 0) == earned_points
            else:
                assert reversed_ <= reversal_target(
                    earned_points, total=order.total, refunded=order.refunded_amount, fully=False
                )


@pytest.mark.slow
@pytest.mark.django_db
def test_random_histories_keep_the_ledger_consistent() -> None:
    _optimistic.clear()
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    if connection.vendor == "postgresql":
        # Both ways of an optimistic write were taken: written, and given up (replays, debts).
        assert _optimistic["written"] > 0 and _optimistic["gave up"] > 0, _optimistic
