"""Every write to the loyalty club: one keyword-only function per business action.

Each write runs in `transaction.atomic()` and first takes the member's row lock
(`SELECT … FOR UPDATE` on PostgreSQL; on SQLite the `IMMEDIATE` transaction mode already lets one
writer in at a time). Under the lock it looks up the idempotency key: a replay returns the first
entry and changes nothing, and the database's unique (member, key) constraint backs this up.
Then it books entries, moves points between lots and updates the cached balance and debt in the
same transaction. The statements every earn and redeem runs (lock, lots, inserts, counters) are
a few raw SQL statements in `ledger_sql`, which also fold the program settings, the key check
and what events need into those round trips; everything else uses the ORM. On PostgreSQL the
inserts and counter updates of `points_adjust` and `points_redeem` leave as one statement
(`vafa.core.batch`), and inside an API write they open no savepoint of their own
(`vafa.core.idempotency.write_atomic`).

The API's earn and redeem first try the write **optimistically** (`vafa.core.batch`): no
transaction and no lock; one statement reads the member (with its `version`), its lots and the
key, and one statement writes everything only if the member's version is still the one read.
Whatever that path does not cover (a member row still to create, debt to pay,
the `inactivity` policy moving expiries, a replay, a concurrent write to the same member) makes
it give up before writing anything (`NeedsLock`), and the write runs again as described above.
Both paths run the same code below; only `_Book.open` and the batch differ.

Rules of the ledger (see `models` for the tables):

- **Earning** opens a lot. Order points are pending until `placed_at + return window`, then
  available until `expires_at` (see `ProgramSettings` for the expiry policies).
- **Spending** takes available lots that expire soonest first (never-expiring lots last, then
  oldest first); expired and pending points cannot be spent.
- **Reversals** (refund, cancellation) take back the order's own lot first, then other lots
  soonest-expiring first (pending ones too); what is left becomes **debt**: the balance goes
  negative and the next credits pay it back, oldest debt first, before anything else.
  Points of the order that had already expired count as already taken back, so a member is
  never charged twice for the same points.
- **Partial refunds** reverse floor(earned × refunded / total) in all (see `rules`).
- **Expiry** is booked lazily at the start of every write for that member, and by the periodic
  `points_expire` run for everyone; one `expire` entry per lot, keyed by the lot.
- **Cancelled redemptions** (`redemption_cancel`, `points_redeem_cancel`) book a `restore`
  entry that returns each lot the redemption took as a new lot with that lot's dates, so the
  points expire when they would have; returned points pay any debt first, like every credit.
"""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.utils import timezone

from vafa.core import batch as write_batch
from vafa.core.errors import NotFoundError, ValidationError
from vafa.core.idempotency import write_atomic
from vafa.core.money import quantize
from vafa.core.text import normalize_digits, normalize_name
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.insights.models import CustomerScore
from vafa.loyalty import events, ledger_sql
from vafa.loyalty.errors import (
    AlreadyReferred,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidPoints,
    NotANewCustomer,
    OutOfStock,
    ReasonRequired,
    RedemptionLimitReached,
    RedemptionNotCancellable,
    ReferralCodeUnknown,
    RewardUnavailable,
    SelfReferral,
    SpendCapReached,
    TierRequired,
)
from vafa.loyalty.expiry import add_months, lot_expires_at
from vafa.loyalty.models import (
    BONUS_RULE_KINDS,
    SYSTEM_ACTOR,
    Allocation,
    Badge,
    Challenge,
    ChallengeCompletion,
    EarningRule,
    EntryKind,
    ExpiryPolicy,
    LeaderboardEntry,
    LedgerEntry,
    Lot,
    Member,
    MemberBadge,
    ProgramSettings,
    Redemption,
    RedemptionStatus,
    Referral,
    ReferralCode,
    ReferralStatus,
    Reward,
    RuleKind,
    Tier,
    TierChange,
)
from vafa.loyalty.rules import (
    Caps,
    EarnQuote,
    RuleSpec,
    quote_bonus,
    quote_order,
    reversal_target,
)
from vafa.loyalty.selectors import (
    EARNING_STATUSES,
    FIRST_ORDER_STATUSES,
    badge_facts,
    category_ancestry,
    challenge_progress,
    cheapest_reward_cost,
    customer_is_vip,
    is_first_order,
    member_reward_spend,
    order_facts,
    program_settings,
    qualified_tier,
    qualifying_value,
)

ORDER_ACTOR = "system:orders"
FULL_REVERSAL_STATUSES = frozenset({OrderStatus.REFUNDED, OrderStatus.CANCELLED})
MAX_KEY_LENGTH = 255


def actor_user(user: Any) -> str:
    """The `actor` string for a person signed in to the dashboard or admin."""
    return f"user:{user.pk}"


def actor_api_key(api_key: Any) -> str:
    """The `actor` string for a shop system calling the API with a key."""
    return f"api_key:{api_key.prefix}"


# ---------------------------------------------------------------------------------------------
# Plumbing: the locked ledger of one member inside one transaction.


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be an aware datetime")
    return now


def _require_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"an idempotency key of 1 to {MAX_KEY_LENGTH} characters is required",
            field="idempotency_key",
        )


def _require_points(points: int, *, allow_negative: bool = False) -> None:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidPoints("points must be a whole number", field="points")
    if points == 0 or (points < 0 and not allow_negative):
        message = "points must not be zero" if allow_negative else "points must be positive"
        raise InvalidPoints(message, field="points")


@dataclass(frozen=True)
class ShopCustomer:
    """A customer named by the shop's own id (`Customer.external_id`), not loaded: the write
    finds it in the statement that locks its member row, one round trip less than loading it
    first (what the API's earn and redeem pass). An unknown id is a `NotFoundError`."""

    external_id: str


CustomerRef = Customer | int | ShopCustomer


def _lock_member(customer: Customer | int, now: datetime) -> Member:
    """The customer's member row, created on first need, locked until the transaction ends."""
    return _lock_member_with_settings(customer, now)[0]


def _lock_member_with_settings(
    customer: CustomerRef, now: datetime
) -> tuple[Member, ProgramSettings, str]:
    """The locked member row (created on first need), the program settings and the customer's
    external id, read in one round trip (see `ledger_sql.lock_member`)."""
    if isinstance(customer, ShopCustomer):
        locked = ledger_sql.lock_member_by_external_id(customer.external_id)
        if locked is not None:
            return locked
        found = ledger_sql.customer_id_for(customer.external_id)
        if found is None:
            raise NotFoundError(f"no customer {customer.external_id!r}")
        customer_id = found
    else:
        customer_id = customer if isinstance(customer, int) else customer.pk
    locked = ledger_sql.lock_member(customer_id)
    if locked is None:
        # get_or_create retries the read when a concurrent first write created the row.
        Member.objects.get_or_create(customer_id=customer_id, defaults={"joined_at": now})
        locked = ledger_sql.lock_member(customer_id)
        if locked is None:  # pragma: no cover - the row was just created or found
            raise NotFoundError(f"no customer {customer_id}")
    return locked


def _spending_order(lot: Lot) -> tuple[bool, datetime, int]:
    """Soonest expiry first, never-expiring last, then the oldest lot."""
    return (lot.expires_at is None, lot.expires_at or lot.available_at, lot.pk)


def _is_open(lot: Lot, now: datetime) -> bool:
    return lot.remaining > 0 and (lot.expires_at is None or lot.expires_at > now)


class _Unknown:
    """Not read yet (distinct from None, "no reward")."""


_UNKNOWN = _Unknown()


class _Book:
    """The writes on one locked member's ledger at one moment `now`."""

    def __init__(self, member: Member, now: datetime, program: ProgramSettings) -> None:
        self.member = member
        self.now = now
        self.program = program
        # The member's lots with points left, read once under the lock and kept current by
        # the book's own writes (nobody else can write them while the lock is held).
        self._lots: list[Lot] | None = None
        # Whether `_lots` is in spending order: sorted when first needed and again only after
        # something that can change the order (a new lot, expiries moved for activity).
        self._lots_sorted = False
        # What this book booked, for the events published when it finishes.
        self.posted: list[LedgerEntry] = []
        self._available_before: int | None = None
        self._customer_ref: str | None = None
        # Whether any webhook endpoint existed when the lots were read (None: not known), so
        # that publishing skips the endpoints query when there is none.
        self._webhooks: bool | None = None
        # The cheapest reward's cost as read with the lots (only read when someone listens).
        self._cheapest: int | _Unknown | None = _UNKNOWN
        # A key read as unused together with the member (optimistic writes), or None.
        self._fresh_key: str | None = None
        # The webhook endpoints, when read with the member (optimistic writes), or None.
        self._endpoints: list[tuple[int, list[str]]] | None = None

    @classmethod
    def open(
        cls,
        customer: CustomerRef,
        now: datetime,
        program: ProgramSettings | None = None,
        *,
        key: str | None = None,
    ) -> _Book:
        """The book of the customer's member, locked; or, in an optimistic write batch, read
        without a lock together with its lots (and whether `key` is used) in one statement,
        with the member's version as the batch's guard."""
        if write_batch.optimistic():
            return cls._open_unlocked(customer, now, program, key)
        member, stored, external_id = _lock_member_with_settings(customer, now)
        book = cls(member, now, program or stored)
        book._customer_ref = external_id
        return book

    @classmethod
    def _open_unlocked(
        cls, customer: CustomerRef, now: datetime, program: ProgramSettings | None, key: str | None
    ) -> _Book:
        listening = events.has_subscribers(events.REWARD_AVAILABLE)
        if isinstance(customer, ShopCustomer):
            value: int | str = customer.external_id
        else:
            value = customer if isinstance(customer, int) else customer.pk
        read = ledger_sql.read_unlocked(
            value,
            by_external_id=isinstance(customer, ShopCustomer),
            key=key,
            cheapest_at=now if listening else None,
        )
        if read is None:
            raise write_batch.NeedsLock("no member row yet")
        book = cls(read.member, now, program or read.program)
        book._customer_ref = read.external_id
        book._keep(read.lots, listening=listening)
        book._endpoints = read.endpoints
        if key is not None and not read.lots.key_used:
            book._fresh_key = key
        return book

    # -- idempotency -----------------------------------------------------------------------

    def replay(
        self, key: str, *, kind: str | None = None, points: int | None = None
    ) -> LedgerEntry | None:
        """The entry first booked under `key`, or None. A key reused for another request fails.

        The first call also reads the member's open lots in the same round trip, so a fresh
        key (the usual case) costs no query of its own."""
        if key == self._fresh_key:
            return None
        if self._lots is None and not self._read_lots(key).key_used:
            return None
        first = LedgerEntry.objects.filter(member=self.member, idempotency_key=key).first()
        if first is not None and (
            (kind is not None and first.kind != kind)
            or (points is not None and first.points != points)
        ):
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for another request",
                field="idempotency_key",
            )
        return first

    # -- entries and lots ------------------------------------------------------------------

    def post(
        self,
        *,
        kind: str,
        points: int,
        key: str,
        actor: str,
        reason: str = "",
        order: Order | None = None,
        related_id: int | None = None,
        occurred_at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> LedgerEntry:
        if self._available_before is None:
            self._available_before = self.available()
        self.member.balance += points
        entry = LedgerEntry(
            member=self.member,
            kind=kind,
            points=points,
            balance_after=self.member.balance,
            occurred_at=occurred_at or self.now,
            created_at=self.now,
            order=order,
            related_entry_id=related_id,
            idempotency_key=key,
            actor=actor,
            reason=reason,
            details=details or {},
        )
        ledger_sql.insert(entry)
        self.posted.append(entry)
        return entry

    def available(self) -> int:
        """Points the member could spend at `now`."""
        return sum(lot.remaining for lot in self.open_lots(available_only=True))

    @property
    def customer_ref(self) -> str:
        """The shop's id for the member (what events name)."""
        if self._customer_ref is None:
            self._customer_ref = Customer.objects.values_list("external_id", flat=True).get(
                pk=self.member.customer_id
            )
        return self._customer_ref

    def expiry_for(self, earned_at: datetime) -> datetime | None:
        """When points earned at `earned_at` expire under the program's policy (under
        `inactivity`, counted from now: crediting is activity)."""
        program = self.program
        return lot_expires_at(
            policy=program.expiry_policy,
            earned_at=self.now if program.expiry_policy == ExpiryPolicy.INACTIVITY else earned_at,
            months=program.expiry_months,
            cal=program.expiry_calendar,
            zone=ZoneInfo(settings.TIME_ZONE),
            years_after=program.expiry_years_after,
        )

    def credit(
        self,
        entry: LedgerEntry,
        *,
        available_at: datetime,
        expires_at: datetime | None,
        points: int | None = None,
    ) -> Lot:
        """Open a lot of a credit entry (all its points unless `points`), pay debt from it
        first, and expire it at once if its time has already come."""
        live = self._live_lots()  # read before the new lot exists, then kept current
        amount = entry.points if points is None else points
        lot = Lot(
            member=self.member,
            entry=entry,
            order=entry.order,
            points=amount,
            remaining=amount,
            available_at=available_at,
            expires_at=expires_at,
            # Points spendable from the start have no maturing for the reward scan to notice.
            maturity_noticed_at=self.now if available_at <= self.now else None,
        )
        ledger_sql.insert(lot)
        live.append(lot)
        self._lots_sorted = False
        if expires_at is not None and expires_at <= self.now:
            self._expire_lot(lot)  # e.g. an order imported long after its points would expire
        else:
            self._pay_debt(lot)
        return lot

    def _read_lots(self, key: str | None = None) -> ledger_sql.OpenLots:
        """Read the member's open lots (and what rides along in the same statement)."""
        listening = events.has_subscribers(events.REWARD_AVAILABLE)
        read = ledger_sql.open_lots(self.member.pk, key, cheapest_at=self.now if listening else None)
        self._keep(read, listening=listening)
        return read

    def _keep(self, read: ledger_sql.OpenLots, *, listening: bool) -> None:
        """Keep what was read with the lots (the cheapest reward only when it was asked for)."""
        self._lots, self._webhooks = read.lots, read.webhooks
        self._lots_sorted = False
        if listening:
            self._cheapest = read.cheapest

    def _live_lots(self) -> list[Lot]:
        lots = self._lots if self._lots is not None else self._read_lots().lots
        if not self._lots_sorted:
            lots.sort(key=_spending_order)
            self._lots_sorted = True
        return lots

    def open_lots(self, *, available_only: bool, exclude: set[int] | None = None) -> list[Lot]:
        """Unexpired lots with points left, soonest-expiring first (never-expiring last, then
        oldest first); only those already available when `available_only`."""
        return [
            lot
            for lot in self._live_lots()
            if _is_open(lot, self.now)
            and (not available_only or lot.available_at <= self.now)
            and (not exclude or lot.pk not in exclude)
        ]

    def own_lot(self, entry: LedgerEntry) -> Lot | None:
        """The open lot a credit entry opened, if it still has points."""
        return next(
            (lot for lot in self.open_lots(available_only=False) if lot.entry_id == entry.pk), None
        )

    def _allocate(self, lot: Lot, entry: LedgerEntry, points: int) -> None:
        ledger_sql.insert(Allocation(lot=lot, entry=entry, points=points, created_at=self.now))
        lot.remaining -= points
        ledger_sql.set_lot_remaining(lot.pk, lot.remaining)

    def consume(self, entry: LedgerEntry, points: int, lots: list[Lot]) -> int:
        """Allocate up to `points` from `lots` in order to the debit `entry`; return the taken."""
        taken = 0
        for lot in lots:
            if taken == points:
                break
            take = min(lot.remaining, points - taken)
            if take > 0:
                self._allocate(lot, entry, take)
                taken += take
        return taken

    def take_back(self, entry: LedgerEntry, points: int, *, first: list[Lot]) -> None:
        """Debit `points` from `first`, then any open lot; what is missing becomes debt."""
        taken = self.consume(entry, points, [lot for lot in first if _is_open(lot, self.now)])
        if taken < points:
            others = self.open_lots(available_only=False, exclude={lot.pk for lot in first})
            taken += self.consume(entry, points - taken, others)
        self.member.debt += points - taken

    def _pay_debt(self, lot: Lot) -> None:
        """Pay what earlier debits could not take, oldest first, from a fresh lot."""
        if self.member.debt <= 0 or not _is_open(lot, self.now):
            return
        owing = (
            LedgerEntry.objects.filter(member=self.member, points__lt=0)
            .annotate(covered=Coalesce(Sum("allocations__points"), 0))
            .filter(covered__lt=-F("points"))
            .order_by("id")
        )
        for debit in owing:
            take = min(-debit.points - debit.covered, lot.remaining, self.member.debt)
            if take > 0:
                self._allocate(lot, debit, take)
                self.member.debt -= take
            if lot.remaining == 0 or self.member.debt == 0:
                break

    def _expire_lot(self, lot: Lot) -> LedgerEntry:
        entry = self.post(
            kind=EntryKind.EXPIRE,
            points=-lot.remaining,
            key=f"lot:{lot.pk}:expire",
            actor=SYSTEM_ACTOR,
            reason="expired",
            occurred_at=lot.expires_at,
            related_id=lot.entry_id,
        )
        self._allocate(lot, entry, lot.remaining)
        return entry

    def expire_due(self) -> list[LedgerEntry]:
        """Book the expiry of every lot of this member whose time has come."""
        due = [
            lot
            for lot in self._live_lots()
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
        ]
        return [self._expire_lot(lot) for lot in due]

    def extend_for_activity(self) -> None:
        """Under the `inactivity` policy an earn or a redemption moves every open lot's expiry
        to `expiry_months` from now (never earlier than it was)."""
        if self.program.expiry_policy != ExpiryPolicy.INACTIVITY:
            return
        until = add_months(self.now, self.program.expiry_months)
        moved = [
            lot
            for lot in self.open_lots(available_only=False)
            if lot.expires_at is not None and lot.expires_at < until
        ]
        for lot in moved:
            lot.expires_at = until
            lot.expiry_notified_at = None
        if moved:
            self._lots_sorted = False
            Lot.objects.filter(pk__in=[lot.pk for lot in moved]).update(
                expires_at=until, expiry_notified_at=None
            )

    def spend(self, points: int, *, key: str, actor: str, reason: str = "") -> LedgerEntry:
        """Book a redemption from available lots, soonest-expiring first, or refuse it."""
        lots = self.open_lots(available_only=True)
        available = sum(lot.remaining for lot in lots)
        if available < points:
            raise InsufficientPoints(requested=points, available=available)
        entry = self.post(
            kind=EntryKind.REDEEM, points=-points, key=key, actor=actor, reason=reason
        )
        self.consume(entry, points, lots)
        self.extend_for_activity()
        return entry

    def restore(self, redeemed: LedgerEntry, *, key: str, actor: str, reason: str) -> LedgerEntry:
        """Give a redemption's points back: each lot it took returns as a new lot with that
        lot's dates, so returned points expire when they would have (or at once, if past)."""
        taken = list(Allocation.objects.filter(entry=redeemed).select_related("lot").order_by("id"))
        entry = self.post(
            kind=EntryKind.RESTORE,
            points=-redeemed.points,
            key=key,
            actor=actor,
            reason=reason,
            related_id=redeemed.pk,
        )
        for allocation in taken:
            self.credit(
                entry,
                points=allocation.points,
                available_at=allocation.lot.available_at,
                expires_at=allocation.lot.expires_at,
            )
        return entry

    def finish(self) -> None:
        """Save the cached balance and debt and publish what this book booked."""
        ledger_sql.set_member_cache(self.member.pk, self.member.balance, self.member.debt)
        if not self.posted:
            return
        self.publish(
            events.LoyaltyEvent(
                name=events.POINTS_CHANGED,
                customer_id=self.customer_ref,
                occurred_at=self.now,
                data={
                    "balance": self.member.balance,
                    "debt": self.member.debt,
                    "entries": [
                        {"id": e.pk, "kind": e.kind, "points": e.points, "reason": e.reason}
                        for e in self.posted
                    ],
                },
            )
        )
        self._publish_reward_available()
        self.posted = []
        self._available_before = None

    def publish(self, event: events.LoyaltyEvent) -> None:
        """Publish an event of this member, skipping the webhook endpoints query when the lots
        read already showed that there is no endpoint."""
        events.publish(event, webhooks=self._webhooks is not False, endpoints=self._endpoints)

    def _publish_reward_available(self) -> None:
        """Tell the subscribers when a credit lifted the member's available points across the
        cost of the cheapest reward open to everyone (a webhook-free, subscribers-only event)."""
        if not events.has_subscribers(events.REWARD_AVAILABLE) or not any(
            e.points > 0 for e in self.posted
        ):
            return
        before, after = self._available_before or 0, self.available()
        if after <= before:  # e.g. pending order points: nothing new to spend
            return
        cheapest = (
            cheapest_reward_cost(now=self.now)
            if isinstance(self._cheapest, _Unknown)
            else self._cheapest
        )
        if cheapest is not None and before < cheapest <= after:
            self._notice_maturing()  # this notice covers them: the scan must not repeat it
            events.publish(
                events.LoyaltyEvent(
                    name=events.REWARD_AVAILABLE,
                    customer_id=self.customer_ref,
                    occurred_at=self.now,
                    data={"available": after, "cheapest_reward_points": cheapest},
                )
            )

    def _notice_maturing(self) -> None:
        """Mark the member's lots whose pending time is over as noticed by the reward scan."""
        Lot.objects.filter(
            member=self.member, maturity_noticed_at__isnull=True, available_at__lte=self.now
        ).update(maturity_noticed_at=self.now)
        for lot in self._live_lots():
            if lot.maturity_noticed_at is None and lot.available_at <= self.now:
                lot.maturity_noticed_at = self.now


# ---------------------------------------------------------------------------------------------
# Redeeming and adjusting.


def points_redeem(
    *,
    customer: CustomerRef,
    points: int,
    idempotency_key: str,
    now: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
    reason: str = "",
) -> LedgerEntry:
    """Spend `points` of the member's available points (soonest-expiring lots first).

    Raises `InsufficientPoints` (409, `insufficient_points`) when fewer are available; pending,
    expired and owed points do not count. Replaying `idempotency_key` returns the first entry.
    """
    now = _aware(now)
    _require_points(points)
    _require_key(idempotency_key)
    with write_atomic(), write_batch.write():
        book = _Book.open(customer, now, key=idempotency_key)
        first = book.replay(idempotency_key, kind=EntryKind.REDEEM, points=-points)
        if first is not None:
            return first
        book.expire_due()
        entry = book.spend(points, key=idempotency_key, actor=actor, reason=reason)
        book.finish()
    return entry


def points_adjust(
    *,
    customer: CustomerRef,
    points: int,
    reason: str,
    actor: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> LedgerEntry:
    """Add (positive) or remove (negative) points by hand, with a reason and who did it.

    Added points are available at once and expire under the program's policy; removed points
    come from the soonest-expiring lots, and what the member no longer has becomes debt.
    """
    now = _aware(now)
    _require_points(points, allow_negative=True)
    _require_key(idempotency_key)
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired("an adjustment needs a reason", field="reason")
    if not (actor or "").strip():
        raise ReasonRequired("an adjustment needs to say who made it", field="actor")
    with write_atomic(), write_batch.write():
        book = _Book.open(customer, now, key=idempotency_key)
        first = book.replay(idempotency_key, kind=EntryKind.ADJUST, points=points)
        if first is not None:
            return first
        book.expire_due()
        entry = book.post(
            kind=EntryKind.ADJUST,
            points=points,
            key=idempotency_key,
            actor=actor.strip(),
            reason=reason[:500],
        )
        if points > 0:
            book.credit(entry, available_at=now, expires_at=book.expiry_for(now))
        else:
            book.take_back(entry, -points, first=[])
        book.finish()
    return entry


def points_award(
    *,
    customer: Customer | int,
    kind: str,
    reference: str,
    now: datetime | None = None,
) -> LedgerEntry | None:
    """Credit a bonus (`signup`, `birthday`, `review`, `survey`, `referral`) under the in-force
    rules of that kind; `reference` names the event (a review id, the birthday's year…) and makes
    the award idempotent. Returns None when no rule gives anything."""
    if kind not in BONUS_RULE_KINDS:
        raise ValidationError(f"{kind!r} is not a bonus rule kind", field="kind")
    now = _aware(now)
    key = f"bonus:{kind}:{reference}"
    _require_key(key)
    with transaction.atomic():
        book = _Book.open(customer, now)
        first = book.replay(key)
        if first is not None:
            return first
        book.expire_due()
        rules = [RuleSpec.from_model(r) for r in EarningRule.objects.filter(active=True, kind=kind)]
        quote = quote_bonus(
            kind,
            rules,
            when=now,
            caps=_program_caps(book, now),
            rule_usage=_rule_usage(book, rules, now),
        )
        if quote.points <= 0:
            return None
        entry = book.post(
            kind=EntryKind.EARN,
            points=quote.points,
            key=key,
            actor=SYSTEM_ACTOR,
            reason=kind,
            details=quote.as_details(),
        )
        book.credit(entry, available_at=now, expires_at=book.expiry_for(now))
        book.extend_for_activity()
        book.finish()
    return entry


# A customer whose `signup_at` is older than this when the feed reports them is not signing up
# now (a history import with `--notify`): no signup bonus.
SIGNUP_RECENT = timedelta(days=7)


def signup_award(*, customer: Customer, now: datetime | None = None) -> LedgerEntry | None:
    """Credit the signup bonus (the in-force `signup` rules) to a customer who has just joined:
    their `signup_at`, or when unknown the moment the shop reported them (`now`), is at most
    `SIGNUP_RECENT` old. Once per customer (keyed by the customer). None when no rule gives
    anything, or the customer joined long ago; no member row is made for nothing."""
    now = _aware(now)
    if not EarningRule.objects.filter(active=True, kind=RuleKind.SIGNUP).exists():
        return None
    joined = customer.signup_at or now
    if not now - SIGNUP_RECENT <= joined <= now + SIGNUP_RECENT:
        return None
    return points_award(
        customer=customer, kind=RuleKind.SIGNUP, reference=str(customer.pk), now=now
    )


def birthdays_award(*, now: datetime | None = None) -> int:
    """Credit the birthday bonus (the in-force `birthday` rules) to every customer whose
    birthday is today in the shop's time zone (`birth_date`'s month and day; 29 February's on
    28 February off leap years), once a year (keyed by the customer and the year). Returns how
    many customers have it for this year; nothing to do when no birthday rule is on."""
    now = _aware(now)
    if not EarningRule.objects.filter(active=True, kind=RuleKind.BIRTHDAY).exists():
        return 0
    today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    born_today = Q(birth_date__month=today.month, birth_date__day=today.day)
    if (today.month, today.day) == (2, 28) and not calendar.isleap(today.year):
        born_today |= Q(birth_date__month=2, birth_date__day=29)
    awarded = 0
    for customer_id in (
        Customer.objects.filter(born_today).order_by("pk").values_list("pk", flat=True)
    ):
        entry = points_award(
            customer=customer_id,
            kind=RuleKind.BIRTHDAY,
            reference=f"{customer_id}:{today.year}",
            now=now,
        )
        awarded += entry is not None
    return awarded


# ---------------------------------------------------------------------------------------------
# Orders.


def _program_caps(book: _Book, when: datetime) -> Caps:
    program = book.program
    if program.max_points_per_period is None:
        return Caps(per_order=program.max_points_per_order)
    used = LedgerEntry.objects.filter(
        member=book.member,
        kind=EntryKind.EARN,
        occurred_at__gt=when - timedelta(days=program.cap_period_days),
        occurred_at__lte=when,
    ).aggregate(total=Coalesce(Sum("points"), 0))["total"]
    return Caps(
        per_order=program.max_points_per_order,
        per_period=program.max_points_per_period,
        used_in_period=used,
    )


def _rule_usage(book: _Book, rules: list[RuleSpec], when: datetime) -> dict[int, int]:
    """Points each period-capped rule already gave the member within its own window."""
    capped = [r for r in rules if r.cap_per_period is not None]
    if not capped:
        return {}
    longest = max(r.cap_period_days for r in capped)
    earned = LedgerEntry.objects.filter(
        member=book.member,
        kind=EntryKind.EARN,
        occurred_at__gt=when - timedelta(days=longest),
        occurred_at__lte=when,
    ).values_list("occurred_at", "details")
    usage: dict[int, int] = {}
    for occurred_at, details in earned:
        for part in (details or {}).get("components", []):
            for rule in capped:
                if part.get("rule") == rule.id and occurred_at > when - timedelta(
                    days=rule.cap_period_days
                ):
                    usage[rule.id] = usage.get(rule.id, 0) + int(part.get("points", 0))
    return usage


def _quote_order(book: _Book, order: Order) -> EarnQuote:
    rules = [RuleSpec.from_model(r) for r in EarningRule.objects.filter(active=True)]
    if not rules:
        return EarnQuote(points=0)
    needs_ancestry = any(r.kind == RuleKind.CATEGORY_MULTIPLIER for r in rules)
    prefetch_related_objects([order], "lines__product")
    facts = order_facts(
        order,
        is_first_order=is_first_order(order),
        ancestry=category_ancestry() if needs_ancestry else None,
    )
    tier = book.member.tier
    multiplier = tier.earn_multiplier if tier else Decimal(1)
    vip_multiplier = book.program.vip_earn_multiplier
    if vip_multiplier > multiplier and customer_is_vip(book.member.customer_id):
        multiplier = vip_multiplier  # a VIP perk; the higher of the two, not both
    return quote_order(
        facts,
        rules,
        tier_multiplier=multiplier,
        caps=_program_caps(book, order.placed_at),
        rule_usage=_rule_usage(book, rules, order.placed_at),
    )


def _reverse_for_order(book: _Book, order: Order, earned: LedgerEntry) -> LedgerEntry | None:
    """Bring the order's reversed points up to what its status and refunds require."""
    target = reversal_target(
        earned.points,
        total=order.total,
        refunded=order.refunded_amount,
        fully=order.status in FULL_REVERSAL_STATUSES,
    )
    if target <= 0:
        return None
    previous = list(
        LedgerEntry.objects.filter(
            member=book.member, order=order, kind=EntryKind.REVERSE
        ).values_list("details", flat=True)
    )
    done = max((int(d.get("target", 0)) for d in previous), default=0)
    if target <= done:
        return None  # reversals only grow: a refund undone later is a manual adjustment
    own = book.own_lot(earned)
    # Points of the order that expired were already lost by the member: they count as taken
    # back (once), so a refund after expiry does not charge the member a second time.
    expired = Allocation.objects.filter(lot__entry=earned, entry__kind=EntryKind.EXPIRE).aggregate(
        total=Coalesce(Sum("points"), 0)
    )["total"]
    used_expired = sum(int(d.get("from_expired", 0)) for d in previous)
    need = target - done
    from_expired = min(need, max(0, expired - used_expired))
    if need == from_expired:
        return None  # fully covered by expired points; recomputed identically on replay
    cancelled = order.status == OrderStatus.CANCELLED
    entry = book.post(
        kind=EntryKind.REVERSE,
        points=-(need - from_expired),
        key=f"order:{order.pk}:reverse:{target}",
        actor=ORDER_ACTOR,
        reason="order cancelled" if cancelled else "order refunded",
        order=order,
        related_id=earned.pk,
        occurred_at=order.placed_at,
        details={"target": target, "from_expired": from_expired},
    )
    book.take_back(entry, need - from_expired, first=[own] if own else [])
    return entry


def order_sync_points(*, order: Order, now: datetime | None = None) -> list[LedgerEntry]:
    """Make the ledger agree with the order's current status; return the entries booked now.

    - paid or partially refunded, never earned: earn (pending for the return window);
    - refunded amount grew: reverse pro rata; refunded or cancelled: reverse everything
      (pending points of a cancelled order are cancelled from its own lot);
    - pending payment: nothing yet.
    Idempotent: calling it again with nothing changed books nothing. The member's tier is
    recalculated afterwards in the same transaction. The importer and webhooks call this.
    """
    now = _aware(now)
    program = program_settings()
    created: list[LedgerEntry] = []
    with transaction.atomic():
        book = _Book.open(order.customer_id, now, program)
        order = Order.objects.get(pk=order.pk)  # the status as of the lock, not the caller's copy
        book.expire_due()
        earned = LedgerEntry.objects.filter(
            member=book.member, order=order, kind=EntryKind.EARN
        ).first()
        if earned is None and order.status in EARNING_STATUSES:
            quote = _quote_order(book, order)
            if quote.points > 0:
                earned = book.post(
                    kind=EntryKind.EARN,
                    points=quote.points,
                    key=f"order:{order.pk}:earn",
                    actor=ORDER_ACTOR,
                    reason="order",
                    order=order,
                    occurred_at=order.placed_at,
                    details=quote.as_details(),
                )
                book.credit(
                    earned,
                    expires_at=book.expiry_for(order.placed_at),
                    available_at=order.placed_at + timedelta(days=program.return_window_days),
                )
                book.extend_for_activity()
                created.append(earned)
        if earned is not None:
            reversal = _reverse_for_order(book, order, earned)
            if reversal is not None:
                created.append(reversal)
        book.finish()
        _tier_update(book)
    return created


# ---------------------------------------------------------------------------------------------
# Rewards and cancelled redemptions.

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud
CODE_LENGTH = 10


def _reward_in_force(reward: Reward, now: datetime) -> bool:
    if not reward.active:
        return False
    if reward.starts_at is not None and now < reward.starts_at:
        return False
    return reward.ends_at is None or now < reward.ends_at


def _new_code(prefix: str) -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def reward_redeem(
    *,
    customer: Customer | int,
    reward: Reward,
    idempotency_key: str,
    now: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
) -> Redemption:
    """Buy `reward` with points and issue its unique coupon code.

    Refuses with `RewardUnavailable` (off or outside its dates), `TierRequired` (below its
    lowest tier, or not a tier with exclusive rewards), `RedemptionLimitReached`, `OutOfStock`
    or `InsufficientPoints`. Stock is taken with a conditional update, so it never goes below
    zero however many members redeem at once. A replayed key returns the first redemption.
    """
    now = _aware(now)
    _require_key(idempotency_key)
    with transaction.atomic():
        book = _Book.open(customer, now)
        reward = Reward.objects.select_related("min_tier").get(pk=reward.pk)
        first = book.replay(idempotency_key, kind=EntryKind.REDEEM)
        if first is not None:  # even if the reward's price changed since
            existing = Redemption.objects.filter(entry=first).first()
            if existing is None or existing.reward_id != reward.pk:
                raise IdempotencyConflict(
                    f"idempotency key {idempotency_key!r} was already used for another request",
                    field="idempotency_key",
                )
            return existing
        if not _reward_in_force(reward, now):
            raise RewardUnavailable(f"{reward.name} cannot be redeemed now", field="reward")
        tier = book.member.tier
        if reward.min_tier is not None and (tier is None or tier.rank < reward.min_tier.rank):
            raise TierRequired(
                f"{reward.name} needs the {reward.min_tier.name} tier", field="reward"
            )
        if reward.exclusive and not (tier is not None and tier.exclusive_rewards):
            raise TierRequired(f"{reward.name} is for tiers with exclusive rewards", field="reward")
        _check_spend_cap(book, reward)
        if reward.per_member_limit is not None:
            taken = (
                Redemption.objects.filter(member=book.member, reward=reward)
                .exclude(status=RedemptionStatus.CANCELLED)
                .count()
            )
            if taken >= reward.per_member_limit:
                raise RedemptionLimitReached(
                    f"{reward.name} can be redeemed {reward.per_member_limit} time(s) per member",
                    field="reward",
                )
        book.expire_due()
        entry = book.spend(
            reward.points_cost, key=idempotency_key, actor=actor, reason=f"reward:{reward.pk}"
        )
        if reward.stock is not None and not Reward.objects.filter(pk=reward.pk, stock__gt=0).update(
            stock=F("stock") - 1
        ):
            raise OutOfStock(f"{reward.name} is out of stock", field="reward")
        book.finish()
        expires_at = (
            now + timedelta(days=reward.coupon_valid_days) if reward.coupon_valid_days else None
        )
        redemption = _create_with_random_code(
            lambda: Redemption.objects.create(
                member=book.member,
                reward=reward,
                entry=entry,
                code=_new_code(reward.coupon_prefix),
                created_at=now,
                expires_at=expires_at,
            )
        )
        book.publish(
            events.LoyaltyEvent(
                name=events.REWARD_REDEEMED,
                customer_id=book.customer_ref,
                occurred_at=now,
                data={
                    "redemption_id": entry.pk,
                    "reward": {"id": reward.pk, "name": reward.name, "kind": reward.kind},
                    "code": redemption.code,
                    "points": reward.points_cost,
                    "code_expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        )
    return redemption


def _check_spend_cap(book: _Book, reward: Reward) -> None:
    """Refuse a reward that would take the program's spend on the member (rewards redeemed in
    the last 12 months at the point value) past their retention spend cap (A3): the program's
    fraction of the member's predicted CLV. No score or no CLV yet: no cap (documented in
    `selectors.VipStatus`)."""
    program = book.program
    if program.retention_spend_fraction is None:
        return
    clv = (
        CustomerScore.objects.filter(customer_id=book.member.customer_id)
        .values_list("predicted_clv", flat=True)
        .first()
    )
    if clv is None:
        return
    cap = max(clv, Decimal(0)) * program.retention_spend_fraction
    spent = member_reward_spend(member=book.member, now=book.now, program=program)
    cost = Decimal(reward.points_cost) * program.point_value
    if spent + cost > cap:
        raise SpendCapReached(
            f"{reward.name} would bring this member's rewards to {spent + cost} "
            f"{program.currency} in 12 months, over the cap of "
            f"{quantize(cap, program.currency)}",
            field="reward",
        )


def redemption_cancel(
    *, redemption: Redemption, reason: str, actor: str, now: datetime | None = None
) -> Redemption:
    """Cancel an issued redemption: its points come back (with their original expiry) and its
    stock returns. Cancelling twice returns the cancelled redemption; a used one is refused
    (`RedemptionNotCancellable`)."""
    now = _aware(now)
    reason, actor = (reason or "").strip(), (actor or "").strip()
    if not reason:
        raise ReasonRequired("a cancellation needs a reason", field="reason")
    if not actor:
        raise ReasonRequired("a cancellation needs to say who made it", field="actor")
    with transaction.atomic():
        book = _Book.open(redemption.member.customer_id, now)
        redemption = Redemption.objects.select_related("entry", "reward").get(pk=redemption.pk)
        if redemption.status == RedemptionStatus.CANCELLED:
            return redemption
        if redemption.status == RedemptionStatus.USED:
            raise RedemptionNotCancellable(f"{redemption.code} was already used", field="code")
        book.expire_due()
        returned = book.restore(
            redemption.entry,
            key=f"redemption:{redemption.pk}:cancel",
            actor=actor,
            reason=reason[:500],
        )
        if redemption.reward.stock is not None:
            Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
        redemption.status = RedemptionStatus.CANCELLED
        redemption.cancelled_at = now
        redemption.cancel_entry = returned
        redemption.save(update_fields=["status", "cancelled_at", "cancel_entry"])
        book.finish()
    return redemption


def redemption_use(*, code: str, now: datetime | None = None) -> Redemption:
    """Record that the shop accepted a coupon code; from then on it cannot be cancelled."""
    now = _aware(now)
    with transaction.atomic():
        redemption = Redemption.objects.select_related("member").filter(code=code).first()
        if redemption is None:
            raise NotFoundError(f"no coupon {code!r}", field="code")
        _lock_member(redemption.member.customer_id, now)
        redemption.refresh_from_db()
        if redemption.status == RedemptionStatus.CANCELLED:
            raise RedemptionNotCancellable(f"{code} was cancelled", field="code")
        if redemption.status == RedemptionStatus.ISSUED:
            redemption.status = RedemptionStatus.USED
            redemption.save(update_fields=["status"])
    return redemption


def points_redeem_cancel(
    *,
    customer: Customer | int,
    idempotency_key: str,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> LedgerEntry:
    """Give back the points of a plain points redemption (found by its idempotency key), with
    their original expiry. Cancelling twice returns the first return entry."""
    now = _aware(now)
    reason, actor = (reason or "").strip(), (actor or "").strip()
    if not reason:
        raise ReasonRequired("a cancellation needs a reason", field="reason")
    if not actor:
        raise ReasonRequired("a cancellation needs to say who made it", field="actor")
    with transaction.atomic():
        book = _Book.open(customer, now)
        redeemed = book.replay(idempotency_key, kind=EntryKind.REDEEM)
        if redeemed is None:
            raise NotFoundError(
                f"no redemption with key {idempotency_key!r}", field="idempotency_key"
            )
        if Redemption.objects.filter(entry=redeemed).exists():
            raise ValidationError(
                "this redemption bought a reward: cancel the redemption", field="idempotency_key"
            )
        key = f"redeem:{redeemed.pk}:cancel"
        first = book.replay(key)
        if first is not None:
            return first
        book.expire_due()
        returned = book.restore(redeemed, key=key, actor=actor, reason=reason[:500])
        book.finish()
    return returned


# ---------------------------------------------------------------------------------------------
# Expiry.


@dataclass(frozen=True)
class ExpiryRun:
    """What one `points_expire` run booked."""

    members: int
    lots: int
    points: int


def points_expire(*, now: datetime | None = None) -> ExpiryRun:
    """Expire the remaining points of every lot whose `expires_at` has passed.

    One short transaction per member (so shop traffic never waits long on a lock); safe to run
    again or concurrently with other writes: an expired lot has nothing left to expire.
    """
    now = _aware(now)
    program = program_settings()
    member_ids = list(
        Lot.objects.filter(is_open=True, expires_at__lte=now)
        .values_list("member_id", flat=True)
        .distinct()
    )
    lots = points = 0
    for member_id in member_ids:
        with transaction.atomic():
            member = Member.objects.select_for_update().get(pk=member_id)
            book = _Book(member, now, program)
            entries = book.expire_due()
            book.finish()
        lots += len(entries)
        points -= sum(e.points for e in entries)
    return ExpiryRun(members=len(member_ids), lots=lots, points=points)


def rewards_available_notify(*, now: datetime | None = None) -> int:
    """Publish `reward.available` for every member whose pending points became available (their
    return window passed) and so lifted their available points across the cost of the cheapest
    reward open to everyone; returns the members told.

    Idempotent: each lot's maturing is looked at once (`Lot.maturity_noticed_at`), so running
    the scan again, or after a write that already announced the same crossing, tells nobody
    twice. "Before" is what the member could spend without the lots that matured since the last
    look; "after" is what they can spend now. One short transaction per member, like
    `points_expire`. Runs hourly; the event goes to in-process subscribers (messaging).
    """
    now = _aware(now)
    program = program_settings()
    cheapest = cheapest_reward_cost(now=now)
    member_ids = list(
        Lot.objects.filter(maturity_noticed_at__isnull=True, available_at__lte=now)
        .values_list("member_id", flat=True)
        .distinct()
    )
    told = 0
    for member_id in member_ids:
        with transaction.atomic():
            member = Member.objects.select_for_update().get(pk=member_id)
            book = _Book(member, now, program)
            matured = Lot.objects.filter(
                member=member, maturity_noticed_at__isnull=True, available_at__lte=now
            )
            fresh = {lot.pk for lot in matured}
            after = book.available()
            gained = sum(
                lot.remaining for lot in book.open_lots(available_only=True) if lot.pk in fresh
            )
            Lot.objects.filter(pk__in=fresh).update(maturity_noticed_at=now)
            if cheapest is not None and after - gained < cheapest <= after:
                told += 1
                events.publish(
                    events.LoyaltyEvent(
                        name=events.REWARD_AVAILABLE,
                        customer_id=book.customer_ref,
                        occurred_at=now,
                        data={
                            "available": after,
                            "cheapest_reward_points": cheapest,
                            "matured_points": gained,
                        },
                    )
                )
    return told


# ---------------------------------------------------------------------------------------------
# Tiers.


def _tier_update(book: _Book) -> TierChange | None:
    """Move the locked member up at once, or down after the grace period."""
    member, now, program = book.member, book.now, book.program
    tiers = list(Tier.objects.all())
    if not tiers:
        return None
    value = qualifying_value(member, now=now, program=program)
    qualified = qualified_tier(tiers, value, program.tier_metric)
    current = next((t for t in tiers if t.pk == member.tier_id), None)
    new_id = qualified.pk if qualified else None
    if new_id == member.tier_id:
        if member.tier_below_since is not None:
            member.tier_below_since = None
            member.save(update_fields=["tier_below_since"])
        return None
    going_up = current is None or (qualified is not None and qualified.rank > current.rank)
    if not going_up:
        if member.tier_below_since is None:
            member.tier_below_since = now
        if now < member.tier_below_since + timedelta(days=program.tier_grace_days):
            member.save(update_fields=["tier_below_since"])
            return None
    change = TierChange.objects.create(
        member=member, from_tier=current, to_tier=qualified, changed_at=now, metric_value=value
    )
    member.tier = qualified
    member.tier_since = now
    member.tier_below_since = None
    member.save(update_fields=["tier", "tier_since", "tier_below_since"])
    book.publish(
        events.LoyaltyEvent(
            name=events.TIER_CHANGED,
            customer_id=book.customer_ref,
            occurred_at=now,
            data={
                "from": _tier_ref(current),
                "to": _tier_ref(qualified),
                "direction": "up" if going_up else "down",
                "qualifying_value": str(value),
            },
        )
    )
    return change


def _tier_ref(tier: Tier | None) -> dict[str, Any] | None:
    return None if tier is None else {"id": tier.pk, "name": tier.name, "rank": tier.rank}


def tier_recalculate(*, customer: Customer | int, now: datetime | None = None) -> TierChange | None:
    """Recalculate one member's tier; returns the change booked, if any."""
    now = _aware(now)
    with transaction.atomic():
        return _tier_update(_Book.open(customer, now))


def tiers_recalculate_all(*, now: datetime | None = None) -> int:
    """Recalculate every member's tier (the periodic task); returns how many changed.

    One short transaction per member, like `points_expire`.
    """
    now = _aware(now)
    program = program_settings()
    changed = 0
    for member_id in Member.objects.order_by("pk").values_list("pk", flat=True).iterator():
        with transaction.atomic():
            member = Member.objects.select_for_update().get(pk=member_id)
            if _tier_update(_Book(member, now, program)) is not None:
                changed += 1
    return changed


# ---------------------------------------------------------------------------------------------
# Expiry notices.

EXPIRY_NOTICE_DAYS = 14


def points_expiring_notify(*, now: datetime | None = None, days: int = EXPIRY_NOTICE_DAYS) -> int:
    """Publish `points.expiring` for every member with points expiring within `days`, once per
    lot (the lot remembers the notice; a moved expiry clears it). Returns the members told.

    Runs daily; the event goes to in-process subscribers (messaging's "points expiring" flow).
    """
    now = _aware(now)
    due = (
        Lot.objects.filter(
            is_open=True,
            expiry_notified_at__isnull=True,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=days),
        )
        .select_related("member__customer")
        .order_by("member_id", "expires_at")
    )
    by_member: dict[int, list[Lot]] = {}
    for lot in due:
        by_member.setdefault(lot.member_id, []).append(lot)
    for lots in by_member.values():
        with transaction.atomic():
            Lot.objects.filter(pk__in=[lot.pk for lot in lots]).update(expiry_notified_at=now)
            events.publish(
                events.LoyaltyEvent(
                    name=events.POINTS_EXPIRING,
                    customer_id=lots[0].member.customer.external_id,
                    occurred_at=now,
                    data={
                        "points": sum(lot.remaining for lot in lots),
                        "first_expires_at": lots[0].expires_at.isoformat()
                        if lots[0].expires_at
                        else None,
                        "lots": [
                            {
                                "points": lot.remaining,
                                "expires_at": lot.expires_at.isoformat()
                                if lot.expires_at
                                else None,
                            }
                            for lot in lots
                        ],
                    },
                )
            )
    return len(by_member)


# ---------------------------------------------------------------------------------------------
# Referrals.

REFERRAL_CODE_LENGTH = 8


def referral_code_get(*, customer: Customer | int, now: datetime | None = None) -> ReferralCode:
    """The member's referral code, created on first need (the link: `selectors.referral_link`)."""
    now = _aware(now)
    with transaction.atomic():
        member = _lock_member(customer, now)
        existing = ReferralCode.objects.filter(member=member).first()
        if existing is not None:
            return existing
        return _create_with_random_code(
            lambda: ReferralCode.objects.create(
                member=member,
                code="".join(secrets.choice(CODE_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH)),
                created_at=now,
            )
        )


_Row = TypeVar("_Row")


def _create_with_random_code(create: Callable[[], _Row], attempts: int = 5) -> _Row:
    """Run `create` (which draws a fresh random code each call) in a savepoint, drawing again
    when the code clashes with a unique one already stored. A clash is a near-impossibility with
    these alphabets and lengths, so a few tries are plenty; the last clash is raised."""
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                return create()
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# Shorter addresses ("Tehran", "-") say nothing about who lives there.
_MIN_ADDRESS_KEY = 10


def _address_key(customer: Customer) -> str:
    """The customer's street address (the `address` attribute: a CSV column of that name or
    `attributes.address` in the API) folded for comparison: Persian and Arabic letters and
    digits unified, case, punctuation and spacing ignored; empty when too short to tell."""
    value = (customer.attributes or {}).get("address")
    if not isinstance(value, str):
        return ""
    folded = normalize_digits(normalize_name(value, language="fa")).casefold()
    key = " ".join("".join(c if c.isalnum() else " " for c in folded).split())
    return key if len(key.replace(" ", "")) >= _MIN_ADDRESS_KEY else ""


def _same_person(a: Customer, b: Customer) -> str | None:
    """Why two customers look like one person, or None: the same email (case-insensitive),
    phone number (E.164) or street address (`_address_key`); each must be non-empty."""
    if a.pk == b.pk:
        return "same customer"
    if a.email and b.email and a.email.strip().lower() == b.email.strip().lower():
        return "same email"
    if a.phone and b.phone and a.phone == b.phone:
        return "same phone"
    address = _address_key(a)
    if address and address == _address_key(b):
        return "same address"
    return None


def referral_attach(*, referee: Customer, code: str, now: datetime | None = None) -> Referral:
    """Record that `referee` joined through `code`. Nothing is credited yet: both sides are
    rewarded by `referrals_settle` once the referee's first paid order is past the return window.

    Refuses an unknown code (`ReferralCodeUnknown`), a self-referral by the same customer, email
    or phone (`SelfReferral`), a referee who already paid for an order (`NotANewCustomer`) or
    who joined through another code (`AlreadyReferred`). Attaching the same code again returns
    the first referral.
    """
    now = _aware(now)
    code = (code or "").strip().upper()
    owner = ReferralCode.objects.select_related("member__customer").filter(code=code).first()
    if owner is None:
        raise ReferralCodeUnknown(f"no referral code {code!r}", field="code")
    why = _same_person(owner.member.customer, referee)
    if why is not None:
        raise SelfReferral(f"a member cannot refer themselves ({why})", field="code")
    with transaction.atomic():
        member = _lock_member(referee, now)
        existing = Referral.objects.filter(referee=member).first()
        if existing is not None:
            if existing.code == code:
                return existing
            raise AlreadyReferred("this customer already joined through a referral", field="code")
        if Order.objects.filter(customer=referee, status__in=FIRST_ORDER_STATUSES).exists():
            raise NotANewCustomer("this customer already bought something", field="code")
        return Referral.objects.create(
            referrer=owner.member, referee=member, code=code, created_at=now
        )


def _settle_one(referral: Referral, now: datetime, program: ProgramSettings) -> bool:
    """Settle one locked pending referral if its time has come; True when it was settled."""
    first = (
        Order.objects.filter(
            customer_id=referral.referee.customer_id, status__in=FIRST_ORDER_STATUSES
        )
        .order_by("placed_at", "pk")
        .first()
    )
    if first is None:
        return False
    if first.placed_at + timedelta(days=program.return_window_days) > now:
        return False
    referral.order = first
    referral.settled_at = now
    if first.status not in EARNING_STATUSES:
        referral.status = ReferralStatus.REJECTED
        referral.reject_reason = "first order refunded"
    else:
        rewarded = Referral.objects.filter(
            referrer_id=referral.referrer_id,
            status=ReferralStatus.REWARDED,
            settled_at__gt=now - timedelta(days=365),
        ).count()
        if program.referral_cap is not None and rewarded >= program.referral_cap:
            referral.status = ReferralStatus.CAPPED
        else:
            referral.status = ReferralStatus.REWARDED
            # Both members' locks, in id order, so two settlements can never deadlock.
            pair = [referral.referrer_id, referral.referee_id]
            list(Member.objects.select_for_update().filter(pk__in=pair).order_by("pk"))
            for side, member in (("referrer", referral.referrer), ("referee", referral.referee)):
                points_award(
                    customer=member.customer_id,
                    kind=RuleKind.REFERRAL,
                    reference=f"{referral.pk}:{side}",
                    now=now,
                )
    referral.save(update_fields=["order", "settled_at", "status", "reject_reason"])
    return True


def referrals_settle(*, now: datetime | None = None) -> int:
    """Reward both sides of every pending referral whose referee's first paid order is past the
    return window (points from the `referral` earning rules); reject it when that order was
    refunded or cancelled; past the program's cap per referrer (rewarded referrals in the last
    365 days) record it as `capped` without points. Returns how many were settled. Runs hourly;
    safe to run again (each award is keyed by the referral and side)."""
    now = _aware(now)
    program = program_settings()
    settled = 0
    # Oldest first: past the cap, the referrals made first are the ones rewarded.
    pending = (
        Referral.objects.filter(status=ReferralStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for referral_id in list(pending):
        with transaction.atomic():
            referral = (
                Referral.objects.select_for_update()
                .select_related("referrer", "referee")
                .get(pk=referral_id)
            )
            if referral.status == ReferralStatus.PENDING and _settle_one(referral, now, program):
                settled += 1
    return settled


# ---------------------------------------------------------------------------------------------
# Gamification.

PSEUDONYM_PREFIX = "Member-"


def badges_evaluate(*, customer: Customer | int, now: datetime | None = None) -> list[MemberBadge]:
    """Award every active badge whose rule the member now meets; returns the new awards.
    Badges are kept for good (a later refund does not take one back)."""
    now = _aware(now)
    badges = list(Badge.objects.filter(active=True))
    if not badges:
        return []
    with transaction.atomic():
        member = _lock_member(customer, now)
        held = set(MemberBadge.objects.filter(member=member).values_list("badge_id", flat=True))
        todo = [b for b in badges if b.pk not in held]
        if not todo:
            return []
        facts = badge_facts(customer=member.customer_id, now=now)
        return [
            MemberBadge.objects.create(member=member, badge=badge, awarded_at=now)
            for badge in todo
            if facts.meets(badge)
        ]


def challenges_evaluate(
    *, customer: Customer | int, now: datetime | None = None
) -> list[ChallengeCompletion]:
    """Complete every running challenge the member has reached and credit its points once
    (an `earn` entry keyed by the challenge, reason `challenge`)."""
    now = _aware(now)
    running = list(
        Challenge.objects.filter(active=True, starts_at__lte=now, ends_at__gt=now)
    )
    if not running:
        return []
    done: list[ChallengeCompletion] = []
    with transaction.atomic():
        book = _Book.open(customer, now)
        finished = set(
            ChallengeCompletion.objects.filter(member=book.member).values_list(
                "challenge_id", flat=True
            )
        )
        for challenge in running:
            if challenge.pk in finished:
                continue
            progress = challenge_progress(
                challenge=challenge, customer=book.member.customer_id, now=now
            )
            if progress < challenge.target:
                continue
            entry = None
            if challenge.reward_points > 0:
                book.expire_due()
                entry = book.post(
                    kind=EntryKind.EARN,
                    points=challenge.reward_points,
                    key=f"challenge:{challenge.pk}",
                    actor=SYSTEM_ACTOR,
                    reason="challenge",
                    details={"challenge": challenge.pk},
                )
                book.credit(entry, available_at=now, expires_at=book.expiry_for(now))
            done.append(
                ChallengeCompletion.objects.create(
                    challenge=challenge, member=book.member, completed_at=now, entry=entry
                )
            )
        book.finish()
    return done


def gamification_run(*, now: datetime | None = None, days: int = 2) -> int:
    """Evaluate badges and challenges for every member who earned anything in the last `days`
    (the nightly task); returns the badges and challenges newly won."""
    now = _aware(now)
    recent = (
        LedgerEntry.objects.filter(created_at__gt=now - timedelta(days=days))
        .values_list("member__customer_id", flat=True)
        .distinct()
    )
    won = 0
    for customer_id in list(recent):
        won += len(badges_evaluate(customer=customer_id, now=now))
        won += len(challenges_evaluate(customer=customer_id, now=now))
    return won


def leaderboard_join(*, customer: Customer | int, now: datetime | None = None) -> LeaderboardEntry:
    """Opt the member in to the leaderboard under a random pseudonym (joining twice keeps it)."""
    now = _aware(now)
    with transaction.atomic():
        member = _lock_member(customer, now)
        existing = LeaderboardEntry.objects.filter(member=member).first()
        if existing is not None:
            return existing
        return _create_with_random_code(
            lambda: LeaderboardEntry.objects.create(
                member=member,
                pseudonym=PSEUDONYM_PREFIX
                + "".join(secrets.choice(CODE_ALPHABET) for _ in range(6)),
                opted_in_at=now,
            )
        )


def leaderboard_leave(*, customer: Customer | int) -> None:
    """Opt out: the member and their pseudonym disappear from the board."""
    customer_id = customer if isinstance(customer, int) else customer.pk
    LeaderboardEntry.objects.filter(member__customer_id=customer_id).delete()
