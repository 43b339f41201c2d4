"""Conversions after messages, treated against held-out control, per source and variant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from vafa.analytics.uplift import newcombe_difference
from vafa.core.errors import ValidationError
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.messaging.measurement import measured_sources, source_results
from vafa.messaging.models import MessageKind, OutboxMessage, Status

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
_keys = count()


def customer() -> Customer:
    return Customer.objects.create(external_id=f"c{next(_keys)}")


def message(who: Customer, *, source: str = "campaign:1", status: str = Status.SENT,
            variant: str = "", step: str = "", occurrence: str = "", at: datetime = T0,
            opened: bool = False, clicked: bool = False,
            kind: str = MessageKind.MARKETING) -> OutboxMessage:
    sent = status in (Status.SENT, Status.DELIVERED)
    return OutboxMessage.objects.create(
        customer=who, channel="email", kind=kind, language="fa", source=source, step=step,
        occurrence=occurrence, variant=variant, dedupe_key=f"k{next(_keys)}", status=status,
        due_at=at, sent_at=at + timedelta(minutes=5) if sent else None,
        opened_at=at + timedelta(hours=1) if opened else None,
        clicked_at=at + timedelta(hours=2) if clicked else None,
        data={"variant": variant} if variant else {},
    )


def buy(who: Customer, *, days: float, total: str, status: str = OrderStatus.PAID,
        refunded: str = "0") -> None:
    Order.objects.create(external_id=f"o{next(_keys)}", customer=who,
                         placed_at=T0 + timedelta(days=days), status=status,
                         total=Decimal(total), refunded_amount=Decimal(refunded), currency="IRR")


@pytest.fixture
def campaign() -> None:
    """Campaign 1, variants A and B, each with its own held-out customers.

    Variant A, treated (4): a1 opened, clicked, bought 100 on day 2 (and 10 the day before the
    message, which does not count); a2 bought 80 on day 6, half refunded (kept 40) plus 10
    more on day 6.5 (50 in all), and 30 on day 8 (outside a 7-day window); a3 was suppressed
    (still treated: intent to treat) and bought nothing; a4 opened, bought only a fully
    refunded order on day 1. Control A (4): one bought 40 on day 1; three nothing.
    Variant B, treated (2): nothing. Control B (2): one bought 20 on day 3.
    Plus one message still queued (pending).
    """
    a1, a2, a3, a4 = (customer() for _ in range(4))
    message(a1, variant="A", opened=True, clicked=True)
    buy(a1, days=2, total="100")
    buy(a1, days=-1, total="10")
    message(a2, variant="A")
    buy(a2, days=6, total="80", status=OrderStatus.PARTIALLY_REFUNDED, refunded="40")
    buy(a2, days=6.5, total="10")
    buy(a2, days=8, total="30")
    message(a3, variant="A", status=Status.SUPPRESSED)
    message(a4, variant="A", opened=True)
    buy(a4, days=1, total="60", status=OrderStatus.REFUNDED, refunded="60")
    controls = [customer() for _ in range(4)]
    for who in controls:
        message(who, variant="A", status=Status.HELD_OUT)
    buy(controls[0], days=1, total="40")
    for _ in range(2):
        message(customer(), variant="B")
    b_controls = [customer() for _ in range(2)]
    for who in b_controls:
        message(who, variant="B", status=Status.HELD_OUT)
    buy(b_controls[0], days=3, total="20")
    message(customer(), variant="B", status=Status.QUEUED)


def test_it_counts_conversions_and_revenue_within_the_window(campaign: None) -> None:
    result = source_results(source="campaign:1", now=NOW)
    a = {variant.variant: variant for variant in result.variants}["A"]
    assert (a.treated.recipients, a.treated.conversions) == (4, 2)
    assert (a.control.recipients, a.control.conversions) == (4, 1)
    assert (a.treated_revenue, a.control_revenue) == (Decimal(150), Decimal(40))
    assert (a.sent, a.opened, a.clicked) == (3, 2, 1)
    assert not a.shared_control
    conversion, revenue = a.uplift.conversion, a.uplift.revenue
    assert conversion is not None and revenue is not None
    # 2/4 − 1/4, with Newcombe's interval (checked against the paper in test_uplift.py).
    assert conversion.estimate == pytest.approx(0.25)
    assert (conversion.low, conversion.high) == (
        pytest.approx(newcombe_difference(2, 4, 1, 4).low),
        pytest.approx(newcombe_difference(2, 4, 1, 4).high))
    # Revenue per recipient: treated (100 + 50 + 0 + 0) / 4 = 37.5, control 40 / 4 = 10.
    assert revenue.estimate == pytest.approx(27.5)
    assert result.pending == 1


def test_overall_pools_the_variants(campaign: None) -> None:
    overall = source_results(source="campaign:1", now=NOW).overall
    assert (overall.treated.recipients, overall.treated.conversions) == (6, 2)
    assert (overall.control.recipients, overall.control.conversions) == (6, 2)
    assert overall.uplift.conversion is not None
    assert overall.uplift.conversion.estimate == pytest.approx(0.0)
    assert overall.control_revenue == Decimal(60)


def test_the_window_is_configurable(campaign: None) -> None:
    result = source_results(source="campaign:1", now=NOW, window=timedelta(days=10))
    a = {variant.variant: variant for variant in result.variants}["A"]
    assert a.treated_revenue == Decimal(180)
    short = source_results(source="campaign:1", now=NOW, window=timedelta(days=1))
    assert {v.variant: v for v in short.variants}["A"].treated.conversions == 0
    with pytest.raises(ValidationError):
        source_results(source="campaign:1", now=NOW, window=timedelta(0))


def test_steps_of_one_occurrence_are_one_exposure_from_the_first_message() -> None:
    who, other = customer(), customer()
    message(who, source="flow:onboarding", step="1", occurrence="signup")
    message(who, source="flow:onboarding", step="2", occurrence="signup",
            at=T0 + timedelta(days=3))
    message(other, source="flow:onboarding", step="1", occurrence="signup",
            status=Status.HELD_OUT)
    message(other, source="flow:onboarding", step="2", occurrence="signup",
            at=T0 + timedelta(days=3), status=Status.HELD_OUT)
    buy(who, days=8, total="25")  # 8 days after step 1, 5 after step 2: outside the window
    result = source_results(source="flow:onboarding", now=NOW)
    assert (result.overall.treated.recipients, result.overall.control.recipients) == (1, 1)
    assert result.overall.treated.conversions == 0
    assert result.variants == []


def test_held_out_customers_not_yet_due_are_pending_and_variants_may_share_a_control() -> None:
    for name in ("A", "B"):
        message(customer(), source="campaign:2", variant=name)
    message(customer(), source="campaign:2", status=Status.HELD_OUT)
    message(customer(), source="campaign:2", status=Status.HELD_OUT, at=NOW + timedelta(days=1))
    result = source_results(source="campaign:2", now=NOW)
    assert result.pending == 1
    assert [(v.variant, v.shared_control, v.control.recipients) for v in result.variants] == [
        ("A", True, 1), ("B", True, 1)]


def test_only_marketing_sources_are_measured(campaign: None) -> None:
    message(customer(), source="flow:order_thanks", kind=MessageKind.TRANSACTIONAL)
    assert measured_sources() == ["campaign:1"]
