"""Reads of the loyalty club: what a member has, where they stand, what a rule would cost, and
whether the cached balances still agree with the ledger. Nothing here writes."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import jdatetime
from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, IntegerField, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils.translation import gettext_lazy as _

from vafa.core.errors import NotFoundError, ValidationError
from vafa.core.money import quantize
from vafa.customers.models import Category, Customer, Event, Order, OrderStatus
from vafa.customers.selectors import MAX_PAGE, decode_cursor, encode_cursor
from vafa.insights.models import CustomerScore
from vafa.loyalty import ledger_sql
from vafa.loyalty.errors import SimulationUnsupported
from vafa.loyalty.models import (
    SYSTEM_ACTOR,
    Allocation,
    Badge,
    BadgeRule,
    Challenge,
    ChallengeCompletion,
    ChallengeMetric,
    EarningRule,
    EntryKind,
    LeaderboardEntry,
    LedgerEntry,
    Lot,
    Member,
    ProgramSettings,
    Redemption,
    RedemptionStatus,
    Referral,
    ReferralStatus,
    Reward,
    RuleKind,
    Tier,
    TierMetric,
)
from vafa.loyalty.rules import (
    LineFacts,
    OrderFacts,
    RuleSpec,
    quote_order,
    reversal_target,
)

EARNING_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED})
# An order counts as the customer's "first" against every order that was ever paid.
FIRST_ORDER_STATUSES = frozenset(
    {OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}
)
EXPIRY_HORIZONS = (30, 60, 90)


def program_settings() -> ProgramSettings:
    """The program's settings row, or the defaults (unsaved) before the merchant saved any."""
    return ProgramSettings.objects.filter(pk=1).first() or ProgramSettings(pk=1)


def customer_for_write(*, external_id: str) -> Customer:
    """The customer with this external id, loaded with only its id and external id: what a
    ledger write needs, in one cheap indexed query (`customer_get` also loads consents).
    `NotFoundError` as `customer_get` when there is none."""
    customer_id = ledger_sql.customer_id_for(external_id)
    if customer_id is None:
        raise NotFoundError(f"no customer {external_id!r}")
    return Customer.from_db(DEFAULT_DB_ALIAS, ["id", "external_id"], [customer_id, external_id])


def _member(customer: Customer | int) -> Member | None:
    customer_id = customer if isinstance(customer, int) else customer.pk
    return Member.objects.select_related("tier").filter(customer_id=customer_id).first()


# ---------------------------------------------------------------------------------------------
# Balance.


@dataclass(frozen=True)
class ExpiringPoints:
    expires_at: datetime
    points: int


@dataclass(frozen=True)
class MemberBalance:
    """A member's points at `now`, from the lots.

    `available` can be spent now; `pending` become available after the return window
    (`next_available_at` is the first such moment); `debt` is owed from reversals and is paid
    by the next credits. `expiring_30/60/90` are the points (available or pending) that expire
    within that many days; `expiring` lists them by date.
    """

    available: int
    pending: int
    debt: int
    expiring_30: int
    expiring_60: int
    expiring_90: int
    expiring: tuple[ExpiringPoints, ...]
    next_available_at: datetime | None

    @property
    def balance(self) -> int:
        """What the ledger says once due expiries are booked: available + pending − debt."""
        return self.available + self.pending - self.debt


def member_balance(*, customer: Customer | int, now: datetime) -> MemberBalance:
    member = _member(customer)
    if member is None:
        return MemberBalance(0, 0, 0, 0, 0, 0, (), None)
    lots = (
        Lot.objects.filter(member=member, is_open=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("remaining", "available_at", "expires_at")
    )
    available = pending = 0
    next_available: datetime | None = None
    by_date: dict[datetime, int] = {}
    horizon = {days: 0 for days in EXPIRY_HORIZONS}
    for remaining, available_at, expires_at in lots:
        if available_at <= now:
            available += remaining
        else:
            pending += remaining
            next_available = min(next_available or available_at, available_at)
        if expires_at is not None:
            for days in EXPIRY_HORIZONS:
                if expires_at <= now + timedelta(days=days):
                    horizon[days] += remaining
            if expires_at <= now + timedelta(days=max(EXPIRY_HORIZONS)):
                by_date[expires_at] = by_date.get(expires_at, 0) + remaining
    return MemberBalance(
        available=available,
        pending=pending,
        debt=member.debt,
        expiring_30=horizon[30],
        expiring_60=horizon[60],
        expiring_90=horizon[90],
        expiring=tuple(ExpiringPoints(at, pts) for at, pts in sorted(by_date.items())),
        next_available_at=next_available,
    )


def member_history(
    *, customer: Customer | int, limit: int = 50, before_id: int | None = None
) -> list[LedgerEntry]:
    """The member's ledger, newest first; page on with the last entry's id as `before_id`."""
    member = _member(customer)
    if member is None:
        return []
    entries = LedgerEntry.objects.filter(member=member).select_related("order")
    if before_id is not None:
        entries = entries.filter(pk__lt=before_id)
    return list(entries.order_by("-pk")[: max(1, min(limit, 500))])


# ---------------------------------------------------------------------------------------------
# Tiers and progress.


def qualifying_value(member: Member, *, now: datetime, program: ProgramSettings) -> Decimal:
    """What the tier rules measure over the rolling window ending at `now`.

    `points`: points earned net of reversals (order entries count at the order's time, so a
    refund lowers the window its order was in); adjustments and redemptions do not count.
    `spend`: total − refunded of paid orders in the program currency.
    """
    since = now - timedelta(days=program.tier_window_days)
    if program.tier_metric == TierMetric.SPEND:
        spent = Order.objects.filter(
            customer_id=member.customer_id,
            status__in=EARNING_STATUSES,
            currency=program.currency,
            placed_at__gt=since,
            placed_at__lte=now,
        ).aggregate(total=Sum(F("total") - F("refunded_amount")))["total"]
        return Decimal(spent or 0)
    earned = LedgerEntry.objects.filter(
        member=member,
        kind__in=[EntryKind.EARN, EntryKind.REVERSE],
        occurred_at__gt=since,
        occurred_at__lte=now,
    ).aggregate(total=Coalesce(Sum("points"), 0))["total"]
    return Decimal(max(earned, 0))


def tier_threshold(tier: Tier, metric: str) -> Decimal:
    return tier.min_spend if metric == TierMetric.SPEND else Decimal(tier.min_points)


def qualified_tier(tiers: list[Tier], value: Decimal, metric: str) -> Tier | None:
    """The highest-ranked tier whose threshold `value` reaches."""
    qualified = None
    for tier in sorted(tiers, key=lambda t: t.rank):
        if value >= tier_threshold(tier, metric):
            qualified = tier
    return qualified


@dataclass(frozen=True)
class TierProgress:
    """Where a member stands: the tier held, the ones below and above, and "x of y" toward the
    one above (`value` of `target`, in points or money as `metric` says). `grace_until` is set
    while the member no longer qualifies for the tier held and keeps it until then."""

    metric: str
    value: Decimal
    current: Tier | None
    below: Tier | None
    above: Tier | None
    target: Decimal | None
    grace_until: datetime | None

    @property
    def remaining(self) -> Decimal | None:
        return None if self.target is None else max(self.target - self.value, Decimal(0))


def member_tier_progress(*, customer: Customer | int, now: datetime) -> TierProgress:
    program = program_settings()
    tiers = sorted(Tier.objects.all(), key=lambda t: t.rank)
    member = _member(customer)
    value = qualifying_value(member, now=now, program=program) if member is not None else Decimal(0)
    current = member.tier if member is not None else None
    if current is None:
        # Not placed yet (no write since joining, or before the nightly run): shown in the
        # tier their value already reaches, as the next recalculation will place them (an
        # entry tier from 0 is everyone's), rather than "0 of 0 to reach" it.
        current = next(
            (t for t in reversed(tiers) if tier_threshold(t, program.tier_metric) <= value), None
        )
    if current is None:
        below = None
        above = next(iter(tiers), None)
    else:
        below = next((t for t in reversed(tiers) if t.rank < current.rank), None)
        above = next((t for t in tiers if t.rank > current.rank), None)
    grace_until = None
    if member is not None and member.tier_below_since is not None:
        grace_until = member.tier_below_since + timedelta(days=program.tier_grace_days)
    return TierProgress(
        metric=program.tier_metric,
        value=value,
        current=current,
        below=below,
        above=above,
        target=tier_threshold(above, program.tier_metric) if above else None,
        grace_until=grace_until,
    )


@dataclass(frozen=True)
class RewardProgress:
    """Progress toward the next reward, shown as "`current` of `goal`".

    Endowed progress (Nunes & Drèze 2006, "The Endowed Progress Effect", J. Consumer Research
    32(4)): a car-wash card needing 8 stamps, given as a 10-stamp card with 2 already stamped,
    was completed far more often than a blank 8-stamp card, for the same effort. So a member who
    has never redeemed sees the first reward as `first_reward_points + endowed_points` with
    `endowed_points` already done; the head start is shown, never credited, so the effort (and
    the shop's cost) is unchanged. After the first redemption the goal is the plain
    `first_reward_points`. `current` counts available and pending points (progress shows at
    once); `ready` says whether enough are available to redeem now.
    """

    current: int
    goal: int
    head_start: int
    ready: bool


def member_reward_progress(*, customer: Customer | int, now: datetime) -> RewardProgress:
    program = program_settings()
    balance = member_balance(customer=customer, now=now)
    member = _member(customer)
    redeemed = member is not None and member.entries.filter(kind=EntryKind.REDEEM).exists()
    head_start = 0 if redeemed else program.endowed_points
    goal = program.first_reward_points + head_start
    points = max(0, balance.available + balance.pending - balance.debt)
    return RewardProgress(
        current=min(goal, head_start + points),
        goal=goal,
        head_start=head_start,
        ready=balance.available - balance.debt >= program.first_reward_points,
    )


# ---------------------------------------------------------------------------------------------
# Orders as the rules see them.


def category_ancestry() -> dict[int, frozenset[int]]:
    """Each category id with the ids of itself and all its parents."""
    parents = dict(Category.objects.values_list("id", "parent_id"))
    ancestry: dict[int, frozenset[int]] = {}
    for category_id in parents:
        seen: list[int] = []
        current: int | None = category_id
        while current is not None and current not in seen:  # a cycle must not hang us
            seen.append(current)
            current = parents.get(current)
        ancestry[category_id] = frozenset(seen)
    return ancestry


def order_facts(
    order: Order, *, is_first_order: bool, ancestry: dict[int, frozenset[int]] | None = None
) -> OrderFacts:
    """The rules' view of an order: lines with their category and (given `ancestry`, needed
    only by category multipliers) the category's parents. Prefetch `lines__product`."""
    lines = []
    for line in sorted(order.lines.all(), key=lambda line: line.line_no):
        category_id = line.product.category_id
        if category_id is None:
            categories: frozenset[int] = frozenset()
        elif ancestry is not None:
            categories = ancestry.get(category_id, frozenset({category_id}))
        else:
            categories = frozenset({category_id})
        lines.append(
            LineFacts(
                product_id=line.product_id,
                category_ids=categories,
                amount=line.unit_price * line.quantity,
            )
        )
    return OrderFacts(
        placed_at=order.placed_at,
        currency=order.currency,
        total=order.total,
        shipping=order.shipping,
        lines=tuple(lines),
        is_first_order=is_first_order,
    )


# What the engine writes as an entry's reason (`services`), in words for staff pages; the
# bonuses use their rule kind's name, a reward redemption its reward's name. Anything else
# (an adjustment's reason, typed by a person) is shown as written.
_SYSTEM_REASONS = {
    "order": _("Order"),
    "order refunded": _("Order refunded"),
    "order cancelled": _("Order cancelled"),
    "expired": _("Expired"),
    "challenge": _("Challenge completed"),
}


def _reward_of(reason: str) -> int | None:
    """The reward id in a redemption's reason (`reward:<id>`, as `services` writes it)."""
    prefix, _sep, rest = reason.partition(":")
    return int(rest) if prefix == "reward" and rest.isdigit() else None


def entry_reason_labels(entries: Sequence[LedgerEntry]) -> dict[int, str]:
    """Each entry's reason in the active language, by entry id (one query for reward names)."""
    rewarded = {entry.pk: _reward_of(entry.reason) for entry in entries}
    rewards = dict(
        Reward.objects.filter(pk__in={r for r in rewarded.values() if r is not None})
        .values_list("pk", "name")
    )
    bonus_kinds = {kind.value: kind.label for kind in RuleKind}
    labels: dict[int, str] = {}
    for entry in entries:
        reason, reward_id = entry.reason, rewarded[entry.pk]
        if reason in _SYSTEM_REASONS:
            label = str(_SYSTEM_REASONS[reason])
        elif entry.actor == SYSTEM_ACTOR and reason in bonus_kinds:
            label = str(bonus_kinds[reason])
        elif reward_id is not None:
            name = rewards.get(reward_id)
            label = str(_("Reward: %(name)s") % {"name": name}) if name else str(_("Reward"))
        else:
            label = reason
        labels[entry.pk] = label
    return labels


def is_first_order(order: Order) -> bool:
    """No earlier order of the customer was ever paid (ties on time broken by id), and no other
    order of theirs has earned points already: orders can arrive out of their order (a history
    import, webhooks retried late), and the order that earned first had the first-order bonus,
    which a member gets once."""
    earned = LedgerEntry.objects.filter(
        member__customer_id=order.customer_id, kind=EntryKind.EARN, order_id__isnull=False
    ).exclude(order_id=order.pk)
    if earned.exists():
        return False
    earlier = Order.objects.filter(
        customer_id=order.customer_id, status__in=FIRST_ORDER_STATUSES
    ).filter(Q(placed_at__lt=order.placed_at) | Q(placed_at=order.placed_at, pk__lt=order.pk))
    return not earlier.exists()


# ---------------------------------------------------------------------------------------------
# Simulation.


@dataclass(frozen=True)
class RuleSimulation:
    """What switching a rule on would have added over [start, end): "this rule would have cost
    `points` points, `cost` `currency`"."""

    rule_id: int
    start: datetime
    end: datetime
    orders: int
    members: int
    points: int
    cost: Decimal
    currency: str


def rule_simulate(*, rule: EarningRule, start: datetime, end: datetime) -> RuleSimulation:
    """Run `rule` (on or off) over past orders or customers without writing anything.

    Order rules: for each order paid in the window, the points the program would have given with
    the rule minus without it (the other active rules and the member's current tier kept as they
    are), net of refunds by the pro-rata rule; the rule's own caps apply (its period cap counted
    from `start`), the program-wide caps do not, so the result is an upper bound. Signup and
    birthday bonuses count the signups and birthdays in the window. Review, survey and referral
    bonuses have no history yet (`SimulationUnsupported`). Cost = points × point value.
    """
    program = program_settings()
    target = RuleSpec.from_model(rule, force_active=True)
    if rule.kind in (RuleKind.SIGNUP, RuleKind.BIRTHDAY):
        points, members = _simulate_customer_bonus(target, start, end)
        orders = 0
    elif rule.kind in (
        RuleKind.BASE_RATE,
        RuleKind.CATEGORY_MULTIPLIER,
        RuleKind.PRODUCT_MULTIPLIER,
        RuleKind.FIRST_ORDER,
    ):
        points, members, orders = _simulate_orders(target, start, end)
    else:
        raise SimulationUnsupported(
            f"{rule.get_kind_display()} rules cannot be simulated: their events have no history",
            field="kind",
        )
    cost = quantize(Decimal(points) * program.point_value, program.currency)
    return RuleSimulation(
        rule_id=rule.pk,
        start=start,
        end=end,
        orders=orders,
        members=members,
        points=points,
        cost=cost,
        currency=program.currency,
    )


def _simulate_orders(target: RuleSpec, start: datetime, end: datetime) -> tuple[int, int, int]:
    others = [
        RuleSpec.from_model(r)
        for r in EarningRule.objects.filter(active=True).exclude(pk=target.id)
    ]
    with_rule = [*others, target]
    needs_ancestry = any(r.kind == RuleKind.CATEGORY_MULTIPLIER for r in with_rule)
    ancestry = category_ancestry() if needs_ancestry else None
    multipliers = dict(
        Member.objects.filter(tier__isnull=False).values_list(
            "customer_id", "tier__earn_multiplier"
        )
    )
    first_paid = (
        Order.objects.filter(customer_id=OuterRef("customer_id"), status__in=FIRST_ORDER_STATUSES)
        .order_by("placed_at", "pk")
        .values("pk")[:1]
    )
    orders = (
        Order.objects.filter(placed_at__gte=start, placed_at__lt=end, status__in=EARNING_STATUSES)
        .annotate(first_paid_id=Subquery(first_paid))
        .prefetch_related("lines__product")
        .order_by("placed_at", "pk")
    )
    usage: dict[int, deque[tuple[datetime, int]]] = {}
    window = timedelta(days=target.cap_period_days)
    total = count = 0
    rewarded: set[int] = set()
    for order in orders.iterator(chunk_size=2000):
        count += 1
        facts = order_facts(
            order, is_first_order=order.first_paid_id == order.pk, ancestry=ancestry
        )
        tier = multipliers.get(order.customer_id, Decimal(1))
        history = usage.setdefault(order.customer_id, deque())
        while history and history[0][0] <= order.placed_at - window:
            history.popleft()
        used = sum(points for _, points in history)
        with_quote = quote_order(
            facts, with_rule, tier_multiplier=tier, rule_usage={target.id: used}
        )
        without_quote = quote_order(facts, others, tier_multiplier=tier)
        history.append((order.placed_at, with_quote.rule_points(target.id)))

        def net(points: int, order: Order = order) -> int:
            return points - reversal_target(
                points, total=order.total, refunded=order.refunded_amount, fully=False
            )

        delta = net(with_quote.points) - net(without_quote.points)
        if delta:
            total += delta
            rewarded.add(order.customer_id)
    return total, len(rewarded), count


def _simulate_customer_bonus(target: RuleSpec, start: datetime, end: datetime) -> tuple[int, int]:
    per_member = target.points
    for cap in (target.cap_per_order, target.cap_per_period):
        if cap is not None:
            per_member = min(per_member, cap)
    if target.kind == RuleKind.SIGNUP:
        members = Customer.objects.filter(signup_at__gte=start, signup_at__lt=end).count()
        return members * per_member, members
    zone = ZoneInfo(settings.TIME_ZONE)
    occurrences = 0
    members = 0
    years = range(start.astimezone(zone).year, end.astimezone(zone).year + 1)
    for birth_date in (
        Customer.objects.filter(birth_date__isnull=False)
        .values_list("birth_date", flat=True)
        .iterator(chunk_size=5000)
    ):
        if birth_date is None:
            continue
        hits = 0
        for year in years:
            if start <= _birthday(birth_date, year, zone) < end:
                hits += 1
        occurrences += hits
        members += 1 if hits else 0
    return occurrences * per_member, members


def _birthday(born: date, year: int, zone: ZoneInfo) -> datetime:
    """Midnight of the birthday in `year` in the shop's zone (29 Feb → 28 Feb off leap years)."""
    try:
        day = born.replace(year=year)
    except ValueError:
        day = born.replace(year=year, day=28)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


# ---------------------------------------------------------------------------------------------
# Liability.


@dataclass(frozen=True)
class MonthFlow:
    """Points booked in one month (in the shop's time zone), by kind; all positive numbers."""

    month: date
    earned: int
    redeemed: int
    returned: int
    expired: int
    reversed: int
    adjusted: int  # net: added minus removed


@dataclass(frozen=True)
class LiabilityReport:
    """What the program owes its members at `as_of`, what it will cost, and how points flowed.

    `outstanding_points` are the unexpired points members hold (available + pending), valued at
    the program's point value; `debt_points` are owed back by members and are not netted off.
    `breakage_rate` is the share of points that left the program by expiring rather than being
    spent, over the months shown (None before any point left): expired / (expired + redeemed −
    returned).
    """

    as_of: datetime
    currency: str
    point_value: Decimal
    outstanding_points: int
    available_points: int
    pending_points: int
    outstanding_cost: Decimal
    debt_points: int
    expiring_30: int
    expiring_60: int
    expiring_90: int
    breakage_rate: Decimal | None
    months: tuple[MonthFlow, ...]


def _month_start(moment: datetime, zone: ZoneInfo, back: int) -> datetime:
    local = moment.astimezone(zone)
    index = local.year * 12 + local.month - 1 - back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)


def liability_report(*, now: datetime, months: int = 12) -> LiabilityReport:
    """The liability report over the last `months` calendar months (this one included)."""
    program = program_settings()
    zone = ZoneInfo(settings.TIME_ZONE)
    live = Lot.objects.filter(is_open=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    available = live.filter(available_at__lte=now).aggregate(s=Coalesce(Sum("remaining"), 0))["s"]
    pending = live.filter(available_at__gt=now).aggregate(s=Coalesce(Sum("remaining"), 0))["s"]
    expiring = {
        days: live.filter(expires_at__lte=now + timedelta(days=days)).aggregate(
            s=Coalesce(Sum("remaining"), 0)
        )["s"]
        for days in EXPIRY_HORIZONS
    }
    debt = Member.objects.aggregate(s=Coalesce(Sum("debt"), 0))["s"]

    since = _month_start(now, zone, months - 1)
    rows = (
        LedgerEntry.objects.filter(created_at__gte=since, created_at__lte=now)
        .annotate(month=TruncMonth("created_at", tzinfo=zone))
        .values("month", "kind")
        .annotate(points=Sum("points"))
    )
    totals: dict[tuple[date, str], int] = {}
    for row in rows:
        month = row["month"].date() if isinstance(row["month"], datetime) else row["month"]
        totals[(month, row["kind"])] = totals.get((month, row["kind"]), 0) + row["points"]
    flows = []
    for back in reversed(range(months)):
        month = _month_start(now, zone, back).date()
        flows.append(
            MonthFlow(
                month=month,
                earned=totals.get((month, EntryKind.EARN), 0),
                redeemed=-totals.get((month, EntryKind.REDEEM), 0),
                returned=totals.get((month, EntryKind.RESTORE), 0),
                expired=-totals.get((month, EntryKind.EXPIRE), 0),
                reversed=-totals.get((month, EntryKind.REVERSE), 0),
                adjusted=totals.get((month, EntryKind.ADJUST), 0),
            )
        )
    expired = sum(f.expired for f in flows)
    spent = sum(f.redeemed - f.returned for f in flows)
    breakage = None
    if expired + spent > 0:
        breakage = (Decimal(expired) / Decimal(expired + spent)).quantize(Decimal("0.0001"))
    outstanding = available + pending
    return LiabilityReport(
        as_of=now,
        currency=program.currency,
        point_value=program.point_value,
        outstanding_points=outstanding,
        available_points=available,
        pending_points=pending,
        outstanding_cost=quantize(Decimal(outstanding) * program.point_value, program.currency),
        debt_points=debt,
        expiring_30=expiring[30],
        expiring_60=expiring[60],
        expiring_90=expiring[90],
        breakage_rate=breakage,
        months=tuple(flows),
    )


# ---------------------------------------------------------------------------------------------
# Reconciliation.


@dataclass(frozen=True)
class LedgerMismatch:
    """One place where a cache or a lot disagrees with the ledger."""

    customer: str
    member_id: int
    check: str
    expected: int
    actual: int


def _sum_by(
    queryset: QuerySet[LedgerEntry] | QuerySet[Allocation] | QuerySet[Lot], group: str, field: str
) -> Subquery:
    return Subquery(
        queryset.order_by().values(group).annotate(total=Sum(field)).values("total")[:1],
        output_field=IntegerField(),
    )


def ledger_reconcile() -> list[LedgerMismatch]:
    """Every disagreement between the caches and the ledger (an empty list: all is well).

    Checks per member: cached balance = Σ entries; cached debt = Σ over debits of what no lot
    covered; balance = Σ lot remaining − debt. Per lot: remaining = points − Σ allocations.
    Per credit: its lots hold exactly its points. Per debit: allocations never exceed its points.
    """
    zero = Value(0)
    members = Member.objects.select_related("customer").annotate(
        ledger=Coalesce(
            _sum_by(LedgerEntry.objects.filter(member=OuterRef("pk")), "member", "points"), zero
        ),
        debits=Coalesce(
            _sum_by(
                LedgerEntry.objects.filter(member=OuterRef("pk"), points__lt=0), "member", "points"
            ),
            zero,
        ),
        allocated=Coalesce(
            _sum_by(
                Allocation.objects.filter(entry__member=OuterRef("pk")), "entry__member", "points"
            ),
            zero,
        ),
        remaining=Coalesce(
            _sum_by(Lot.objects.filter(member=OuterRef("pk")), "member", "remaining"), zero
        ),
    )
    problems: list[LedgerMismatch] = []
    for m in members.iterator(chunk_size=2000):
        label = m.customer.external_id
        owed = -m.debits - m.allocated
        for check, expected, actual in (
            ("balance", m.ledger, m.balance),
            ("debt", owed, m.debt),
            ("lots", m.ledger, m.remaining - owed),  # what the open lots add up to
        ):
            if expected != actual:
                problems.append(LedgerMismatch(label, m.pk, check, expected, actual))
    lots = (
        Lot.objects.select_related("member__customer")
        .annotate(
            allocated=Coalesce(
                _sum_by(Allocation.objects.filter(lot=OuterRef("pk")), "lot", "points"), zero
            )
        )
        .exclude(remaining=F("points") - F("allocated"))
    )
    for lot in lots:
        problems.append(
            LedgerMismatch(
                lot.member.customer.external_id,
                lot.member_id,
                f"lot {lot.pk}",
                lot.points - lot.allocated,
                lot.remaining,
            )
        )
    credits = (
        LedgerEntry.objects.select_related("member__customer")
        .filter(points__gt=0)
        .annotate(
            opened=Coalesce(
                _sum_by(Lot.objects.filter(entry=OuterRef("pk")), "entry", "points"), zero
            )
        )
        .exclude(opened=F("points"))
    )
    for credit in credits:
        problems.append(
            LedgerMismatch(
                credit.member.customer.external_id,
                credit.member_id,
                f"credit {credit.pk}",
                credit.points,
                credit.opened,
            )
        )
    debits = (
        LedgerEntry.objects.select_related("member__customer")
        .filter(points__lt=0)
        .annotate(
            allocated=Coalesce(
                _sum_by(Allocation.objects.filter(entry=OuterRef("pk")), "entry", "points"), zero
            )
        )
        .filter(allocated__gt=-F("points"))
    )
    for entry in debits:
        problems.append(
            LedgerMismatch(
                entry.member.customer.external_id,
                entry.member_id,
                f"entry {entry.pk}",
                -entry.points,
                entry.allocated,
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------
# The API's reads.


def member_history_page(
    *, customer: Customer | int, cursor: str | None = None, limit: int = 50
) -> tuple[list[LedgerEntry], str | None]:
    """The member's ledger newest first, `limit` at a time, with the cursor of the next page
    (None on the last one). Cursors stay valid while entries are added."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    before = decode_cursor(cursor) if cursor else None
    rows = member_history(customer=customer, limit=limit + 1, before_id=before)
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor


def reward_in_force(reward: Reward, now: datetime) -> bool:
    """The reward is switched on and inside its dates."""
    if not reward.active:
        return False
    if reward.starts_at is not None and now < reward.starts_at:
        return False
    return reward.ends_at is None or now < reward.ends_at


def rewards_catalogue(*, now: datetime, customer: Customer | int | None = None) -> list[Reward]:
    """Rewards in force and in stock, cheapest first; for a customer only those their tier may
    redeem (a `min_tier` at or below theirs, `exclusive` only for tiers with exclusive rewards)."""
    rewards = [
        r
        for r in Reward.objects.select_related("min_tier").exclude(stock=0)
        if reward_in_force(r, now)
    ]
    if customer is None:
        return rewards
    member = _member(customer)
    tier = member.tier if member is not None else None
    return [
        r
        for r in rewards
        if (r.min_tier is None or (tier is not None and tier.rank >= r.min_tier.rank))
        and (not r.exclusive or (tier is not None and tier.exclusive_rewards))
    ]


def cheapest_reward_cost(*, now: datetime) -> int | None:
    """Points of the cheapest reward any member could redeem now (None without rewards)."""
    costs = [
        r.points_cost
        for r in rewards_catalogue(now=now)
        if r.min_tier is None and not r.exclusive
    ]
    return min(costs) if costs else None


# ---------------------------------------------------------------------------------------------
# VIP and the retention spend cap (A3).

SPEND_WINDOW = timedelta(days=365)


@dataclass(frozen=True)
class VipPerks:
    """What a VIP gets: points on orders at `earn_multiplier` (or their tier's, if higher; Vafa
    books it), and free shipping and early access for the shop to give."""

    earn_multiplier: Decimal
    free_shipping: bool
    early_access: bool

    @classmethod
    def of(cls, program: ProgramSettings) -> VipPerks:
        return cls(
            earn_multiplier=program.vip_earn_multiplier,
            free_shipping=program.vip_free_shipping,
            early_access=program.vip_early_access,
        )


def customer_is_vip(customer_id: int) -> bool:
    """Whether the latest analysis run flagged the customer VIP (one indexed read)."""
    return CustomerScore.objects.filter(customer_id=customer_id, vip=True).exists()


@dataclass(frozen=True)
class VipStatus:
    """A member's VIP standing from the latest analytics run, and the retention spend cap.

    `vip` and `predicted_clv` come from `insights.CustomerScore` (the top 2–3% by predicted CLV
    are flagged there). `spend_cap` = program fraction × predicted CLV, in the program currency;
    it is None (no cap) when the customer has no score or no CLV yet, or the program sets no
    fraction: a new customer must still be able to redeem. `spent` is the money cost of the
    rewards they redeemed in the last 12 months and did not cancel (points × point value).
    """

    vip: bool
    predicted_clv: Decimal | None
    spend_cap: Decimal | None
    spent: Decimal
    currency: str
    # The program's VIP perks (`ProgramSettings.vip_*`), None unless the member is a VIP.
    perks: VipPerks | None = None

    @property
    def cap_left(self) -> Decimal | None:
        return None if self.spend_cap is None else max(self.spend_cap - self.spent, Decimal(0))


def member_reward_spend(*, member: Member, now: datetime, program: ProgramSettings) -> Decimal:
    """Money cost of the member's reward redemptions in the 12 months to `now`, not cancelled."""
    points = (
        Redemption.objects.filter(member=member, created_at__gt=now - SPEND_WINDOW)
        .exclude(status=RedemptionStatus.CANCELLED)
        .aggregate(total=Coalesce(Sum("reward__points_cost"), 0))["total"]
    )
    return quantize(Decimal(points) * program.point_value, program.currency)


def member_vip(*, customer: Customer | int, now: datetime) -> VipStatus:
    program = program_settings()
    customer_id = customer if isinstance(customer, int) else customer.pk
    score = CustomerScore.objects.filter(customer_id=customer_id).first()
    member = _member(customer_id)
    spent = (
        member_reward_spend(member=member, now=now, program=program)
        if member is not None
        else Decimal(0)
    )
    clv = score.predicted_clv if score is not None else None
    cap = None
    if clv is not None and program.retention_spend_fraction is not None:
        cap = quantize(max(clv, Decimal(0)) * program.retention_spend_fraction, program.currency)
    vip = bool(score and score.vip)
    return VipStatus(
        vip=vip,
        predicted_clv=clv,
        spend_cap=cap,
        spent=spent,
        currency=program.currency,
        perks=VipPerks.of(program) if vip else None,
    )


# ---------------------------------------------------------------------------------------------
# Referrals.


def referral_link(code: str) -> str:
    """The link a member shares: `VAFA_REFERRAL_URL` with `{code}` filled in (default
    `/r/{code}`, for the shop to redirect)."""
    template = str(getattr(settings, "VAFA_REFERRAL_URL", "/r/{code}"))
    return template.replace("{code}", code)


@dataclass(frozen=True)
class ReferralRate:
    """Referral as a KPI: of the customers whose first paid order fell in [start, end), how many
    came through a referral that was not rejected."""

    start: datetime
    end: datetime
    new_customers: int
    referred: int

    @property
    def rate(self) -> Decimal | None:
        if not self.new_customers:
            return None
        return (Decimal(self.referred) / Decimal(self.new_customers)).quantize(Decimal("0.0001"))


def referral_rate(*, start: datetime, end: datetime) -> ReferralRate:
    new_ids = list(
        Order.objects.filter(status__in=FIRST_ORDER_STATUSES)
        .values("customer_id")
        .annotate(first=Min("placed_at"))
        .filter(first__gte=start, first__lt=end)
        .values_list("customer_id", flat=True)
    )
    referred = (
        Referral.objects.filter(referee__customer_id__in=new_ids)
        .exclude(status=ReferralStatus.REJECTED)
        .count()
    )
    return ReferralRate(start=start, end=end, new_customers=len(new_ids), referred=referred)


# ---------------------------------------------------------------------------------------------
# Gamification.

NOWRUZ_LAST_DAY = 13  # the Nowruz holidays: 1 to 13 Farvardin


def is_nowruz(moment: datetime) -> bool:
    """Whether `moment` falls in 1–13 Farvardin in the shop's time zone."""
    local = moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    jalali = jdatetime.date.fromgregorian(date=local)
    return jalali.month == 1 and jalali.day <= NOWRUZ_LAST_DAY


@dataclass(frozen=True)
class BadgeFacts:
    """What the badge rules look at, for one customer up to `now`."""

    orders: int
    reviews: int
    points_earned: int
    nowruz_buyer: bool

    def meets(self, badge: Badge) -> bool:
        if badge.rule == BadgeRule.ORDERS:
            return self.orders >= badge.threshold
        if badge.rule == BadgeRule.REVIEWS:
            return self.reviews >= badge.threshold
        if badge.rule == BadgeRule.POINTS_EARNED:
            return self.points_earned >= badge.threshold
        if badge.rule == BadgeRule.NOWRUZ_BUYER:
            return self.nowruz_buyer
        return False


def badge_facts(*, customer: Customer | int, now: datetime) -> BadgeFacts:
    """Paid orders (refunded ones do not count), reviews (those published in Vafa's own reviews,
    and the shop's events of type `review` for reviews written elsewhere), points earned net of
    reversals, and whether any paid order was placed during Nowruz."""
    customer_id = customer if isinstance(customer, int) else customer.pk
    placed = list(
        Order.objects.filter(
            customer_id=customer_id, status__in=EARNING_STATUSES, placed_at__lte=now
        ).values_list("placed_at", flat=True)
    )
    # The feedback app builds on this one (its review bonus is a loyalty award), so its model
    # is looked up, not imported.
    review_model = apps.get_model("feedback", "Review")
    reviews = Event.objects.filter(
        customer_id=customer_id, type="review", occurred_at__lte=now
    ).count() + review_model.objects.filter(
        customer_id=customer_id, status="published", published_at__lte=now
    ).count()
    earned = LedgerEntry.objects.filter(
        member__customer_id=customer_id,
        kind__in=[EntryKind.EARN, EntryKind.REVERSE],
        occurred_at__lte=now,
    ).aggregate(total=Coalesce(Sum("points"), 0))["total"]
    return BadgeFacts(
        orders=len(placed),
        reviews=reviews,
        points_earned=max(earned, 0),
        nowruz_buyer=any(is_nowruz(at) for at in placed),
    )


def challenge_progress(*, challenge: Challenge, customer: Customer | int, now: datetime) -> int:
    """The member's count toward the challenge within its dates (up to `now`)."""
    customer_id = customer if isinstance(customer, int) else customer.pk
    until = min(now, challenge.ends_at)
    if challenge.metric == ChallengeMetric.ORDERS:
        return Order.objects.filter(
            customer_id=customer_id,
            status__in=EARNING_STATUSES,
            placed_at__gte=challenge.starts_at,
            placed_at__lt=until,
        ).count()
    earned = LedgerEntry.objects.filter(
        member__customer_id=customer_id,
        kind__in=[EntryKind.EARN, EntryKind.REVERSE],
        occurred_at__gte=challenge.starts_at,
        occurred_at__lt=until,
    ).exclude(reason="challenge").aggregate(total=Coalesce(Sum("points"), 0))["total"]
    return max(int(earned), 0)


@dataclass(frozen=True)
class ChallengeStanding:
    """A running challenge as one member sees it: "progress of target", and whether done."""

    challenge: Challenge
    progress: int  # the member's count, capped at the target (a bar never overflows)
    completed_at: datetime | None  # when the member completed it (points credited then)

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


def member_challenges(*, customer: Customer | int, now: datetime) -> list[ChallengeStanding]:
    """The challenges running at `now` (active, started, not ended), soonest-ending first,
    with the member's progress toward each. A completed one shows its target as progress and
    when it was completed, even if later refunds lowered the count (the points were kept)."""
    customer_id = customer if isinstance(customer, int) else customer.pk
    running = list(
        Challenge.objects.filter(active=True, starts_at__lte=now, ends_at__gt=now).order_by(
            "ends_at", "id"
        )
    )
    if not running:
        return []
    done = dict(
        ChallengeCompletion.objects.filter(
            member__customer_id=customer_id, challenge__in=running
        ).values_list("challenge_id", "completed_at")
    )
    standings = []
    for challenge in running:
        completed_at = done.get(challenge.pk)
        progress = (
            challenge.target
            if completed_at is not None
            else min(
                challenge_progress(challenge=challenge, customer=customer_id, now=now),
                challenge.target,
            )
        )
        standings.append(ChallengeStanding(challenge, progress, completed_at))
    return standings


@dataclass(frozen=True)
class LeaderboardRow:
    """One line of the board: a pseudonym and points, never a name."""

    rank: int
    pseudonym: str
    points: int


def leaderboard(*, now: datetime, days: int = 30, limit: int = 10) -> list[LeaderboardRow]:
    """Opted-in members by points earned (net of reversals) in the last `days`, pseudonyms
    only; ties share a rank."""
    since = now - timedelta(days=days)
    rows = (
        LeaderboardEntry.objects.annotate(
            points=Coalesce(
                Sum(
                    "member__entries__points",
                    filter=Q(
                        member__entries__kind__in=[EntryKind.EARN, EntryKind.REVERSE],
                        member__entries__occurred_at__gt=since,
                        member__entries__occurred_at__lte=now,
                    ),
                ),
                0,
            )
        )
        .filter(points__gt=0)
        .order_by("-points", "pseudonym")
        .values_list("pseudonym", "points")[: max(1, min(limit, 100))]
    )
    board: list[LeaderboardRow] = []
    for pseudonym, points in rows:
        rank = board[-1].rank if board and board[-1].points == points else len(board) + 1
        board.append(LeaderboardRow(rank=rank, pseudonym=pseudonym, points=points))
    return board
