"""Control groups: which customers a marketing flow or campaign holds out, to measure uplift.

A customer's bucket is a keyed hash of the customer id and the flow or campaign (`salt`), mod
10,000: stable across runs and machines, independent between flows (each flow holds out its own
10%, so no customer is starved of every message), and unpredictable without the key. A customer
is held out when the bucket is below `percent` × 100.
"""

from __future__ import annotations

import hashlib
import hmac
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef
from django.db.models.functions import Coalesce

from vafa.analytics.uplift import DEFAULT_CONFIDENCE, GroupOutcome, Uplift, measure_uplift
from vafa.core.errors import ValidationError
from vafa.customers.models import Order
from vafa.messaging.models import MessageKind, OutboxMessage, Status

BUCKETS = 10_000


def holdout_key(configured: str = "") -> bytes:
    """The hash key: `VAFA_HOLDOUT_KEY` when set, else one derived from `SECRET_KEY`."""
    if configured:
        return configured.encode()
    return hashlib.sha256(b"vafa.messaging.holdout:" + settings.SECRET_KEY.encode()).digest()


def control_bucket(*, customer_id: int, salt: str, key: bytes) -> int:
    """The customer's bucket in 0…9,999 for the flow or campaign `salt`."""
    digest = hmac.new(key, f"{salt}:{customer_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def is_held_out(*, customer_id: int, salt: str, percent: Decimal | int, key: bytes) -> bool:
    """Whether the customer belongs to the control group of `salt` (`percent` of 0–100)."""
    threshold = Decimal(percent) * BUCKETS / 100
    return control_bucket(customer_id=customer_id, salt=salt, key=key) < threshold


# -- uplift: what each flow, campaign and variant did against its control group --------------

DEFAULT_WINDOW = timedelta(days=7)
# Messages still on their way: neither treated nor control until they reach a final status.
_UNSETTLED = frozenset({Status.QUEUED, Status.DEFERRED, Status.SENDING})
_REACHED = frozenset({Status.SENT, Status.DELIVERED})


@dataclass(frozen=True)
class VariantResult:
    """One variant of a flow or campaign (`variant` is "" when it has none): its treated and
    control groups, the uplift between them, and the engagement of the messages sent."""

    source: str
    variant: str
    uplift: Uplift
    treated_revenue: Decimal
    control_revenue: Decimal
    sent: int
    opened: int
    clicked: int
    shared_control: bool

    @property
    def treated(self) -> GroupOutcome:
        return self.uplift.treated

    @property
    def control(self) -> GroupOutcome:
        return self.uplift.control


@dataclass(frozen=True)
class SourceResult:
    """A flow (`flow:<key>`) or campaign (`campaign:<id>`): all variants together, then each."""

    source: str
    overall: VariantResult
    variants: list[VariantResult]
    pending: int
    window: timedelta


@dataclass
class _Unit:
    """One exposure: a customer entering a source once (all steps of one occurrence)."""

    customer_id: int
    at: datetime
    variant: str
    held_out: bool
    sent: bool = False
    opened: bool = False
    clicked: bool = False
    revenue: Decimal = Decimal(0)
    converted: bool = False


def measured_sources() -> list[str]:
    """Marketing flows and campaigns that have messages, most recent first."""
    rows = (OutboxMessage.objects.filter(kind=MessageKind.MARKETING).order_by()
            .values("source").annotate(last=Max("due_at")).order_by("-last", "source"))
    return [row["source"] for row in rows]


def source_results(*, source: str, now: datetime, window: timedelta = DEFAULT_WINDOW,
                   confidence: float = DEFAULT_CONFIDENCE) -> SourceResult:
    """Conversions and revenue after the messages of `source`, treated against control.

    The unit is an exposure: one customer entering the source once (one `occurrence`; the
    steps of an onboarding sequence are one exposure), timed at its first message, sent or,
    for a held-out customer, due ("would have sent"). It converts when the customer places a
    purchase (paid or partially refunded; revenue = total − refunded) within `window` after
    that time. Treated is every exposure not held out whose messages reached a final status,
    whether or not the message got through (intent to treat: the control group was drawn
    before suppressions, caps and bounces, so dropping those from the treated side would bias
    the comparison). Exposures still queued, or not yet due, are counted as `pending`.

    A variant is compared with the held-out customers assigned to the same variant; when a
    source's held-out rows carry no variant, every variant shares the source's control group
    (`shared_control`). Methods: `vafa.analytics.uplift.measure_uplift`.
    """
    if window <= timedelta(0):
        raise ValidationError("the conversion window must be positive", field="window")
    units, pending = _exposures(source=source, now=now)
    _attach_purchases(units, source=source, window=window)
    treated_all = [unit for unit in units if not unit.held_out]
    control_all = [unit for unit in units if unit.held_out]
    overall = _variant_result(source, "", treated_all, control_all, False, confidence)
    names = sorted({unit.variant for unit in treated_all if unit.variant})
    control_variants = {unit.variant for unit in control_all}
    shared = control_variants <= {""}
    variants = [
        _variant_result(
            source, name, [unit for unit in treated_all if unit.variant == name],
            control_all if shared else [unit for unit in control_all if unit.variant == name],
            shared, confidence)
        for name in names
    ]
    return SourceResult(source, overall, variants, pending, window)


def results_overview(*, now: datetime, window: timedelta = DEFAULT_WINDOW,
                     confidence: float = DEFAULT_CONFIDENCE) -> list[SourceResult]:
    """`source_results` for every marketing flow and campaign."""
    return [source_results(source=source, now=now, window=window, confidence=confidence)
            for source in measured_sources()]


def _exposures(*, source: str, now: datetime) -> tuple[list[_Unit], int]:
    rows = (
        OutboxMessage.objects.filter(source=source, kind=MessageKind.MARKETING)
        .order_by()
        .annotate(at=Coalesce("sent_at", "due_at"))
        .values_list("customer_id", "occurrence", "at", "variant", "data", "status",
                     "opened_at", "clicked_at")
    )
    units: dict[tuple[int, str], _Unit] = {}
    unsettled: set[tuple[int, str]] = set()
    for customer_id, occurrence, at, variant, data, status, opened, clicked in rows.iterator(
            chunk_size=5000):
        key = (customer_id, occurrence)
        held = status == Status.HELD_OUT
        if status in _UNSETTLED or (held and at > now):
            unsettled.add(key)
            continue
        name = variant or (data.get("variant", "") if isinstance(data, dict) else "")
        unit = units.get(key)
        if unit is None:
            unit = units[key] = _Unit(customer_id, at, str(name)[:20], held)
        elif at < unit.at:
            unit.at = at
        unit.held_out = unit.held_out and held
        unit.sent = unit.sent or status in _REACHED
        unit.opened = unit.opened or opened is not None
        unit.clicked = unit.clicked or clicked is not None
    for key in unsettled:  # an occurrence with a message still on its way is not measured yet
        units.pop(key, None)
    return list(units.values()), len(unsettled)


def _attach_purchases(units: list[_Unit], *, source: str, window: timedelta) -> None:
    """Mark each exposure converted when its customer bought within the window after it."""
    if not units:
        return
    # Imported here: the insights services pull in the analytics stack (pandas), which the
    # messaging worker does not otherwise need.
    from vafa.insights.services import PURCHASE_STATUSES

    start = min(unit.at for unit in units)
    end = max(unit.at for unit in units) + window
    customers = {unit.customer_id for unit in units}
    purchases: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    # Read purchases of the source's customers in one pass (a semi-join, not a giant IN list).
    orders = (
        Order.objects.filter(status__in=PURCHASE_STATUSES, placed_at__gte=start,
                             placed_at__lt=end)
        .filter(Exists(OutboxMessage.objects.filter(source=source,
                                                    customer_id=OuterRef("customer_id"))))
        .order_by()
        .annotate(kept=F("total") - F("refunded_amount"))
        .values_list("customer_id", "placed_at", "kept")
    )
    for customer_id, placed_at, kept in orders.iterator(chunk_size=5000):
        if customer_id in customers:
            purchases[customer_id].append((placed_at, kept))
    for bought in purchases.values():
        bought.sort()
    for unit in units:
        if unit.customer_id not in purchases:
            continue
        bought = purchases[unit.customer_id]
        times = [placed for placed, _kept in bought]
        first = bisect_left(times, unit.at)
        last = bisect_left(times, unit.at + window)
        if last > first:
            unit.converted = True
            unit.revenue = sum((kept for _placed, kept in bought[first:last]), Decimal(0))


def _outcome(units: list[_Unit]) -> tuple[GroupOutcome, Decimal]:
    revenue = sum((unit.revenue for unit in units), Decimal(0))
    squares = sum(float(unit.revenue) ** 2 for unit in units)
    outcome = GroupOutcome(recipients=len(units),
                           conversions=sum(1 for unit in units if unit.converted),
                           revenue=float(revenue), revenue_squares=squares)
    return outcome, revenue


def _variant_result(source: str, variant: str, treated: list[_Unit], control: list[_Unit],
                    shared: bool, confidence: float) -> VariantResult:
    treated_outcome, treated_revenue = _outcome(treated)
    control_outcome, control_revenue = _outcome(control)
    return VariantResult(
        source=source, variant=variant,
        uplift=measure_uplift(treated_outcome, control_outcome, confidence),
        treated_revenue=treated_revenue, control_revenue=control_revenue,
        sent=sum(1 for unit in treated if unit.sent),
        opened=sum(1 for unit in treated if unit.opened),
        clicked=sum(1 for unit in treated if unit.clicked),
        shared_control=shared,
    )
