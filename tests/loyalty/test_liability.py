"""The liability report: outstanding points and their cost, expiring soon, breakage, flows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.loyalty.conftest import make_order, make_program
from vafa.customers.models import Customer
from vafa.loyalty.models import ExpiryPolicy
from vafa.loyalty.selectors import liability_report
from vafa.loyalty.services import (
    order_sync_points,
    points_adjust,
    points_expire,
    points_redeem,
)

pytestmark = pytest.mark.usefixtures("base_rule")
JAN = datetime(2025, 1, 10, 12, tzinfo=UTC)


def test_the_report_values_outstanding_points_and_shows_monthly_flows(
    zahra: Customer, omid: Customer
) -> None:
    make_program(expiry_policy=ExpiryPolicy.ROLLING, expiry_months=1, point_value=Decimal(100))
    points_adjust(
        customer=zahra, points=500, reason="welcome", actor="system", idempotency_key="a", now=JAN
    )
    points_redeem(customer=zahra, points=200, idempotency_key="r", now=JAN)
    points_adjust(
        customer=omid, points=100, reason="welcome", actor="system", idempotency_key="a", now=JAN
    )
    feb = JAN + timedelta(days=35)  # 14 February: January's points expired on 10 February
    points_expire(now=feb)
    order = make_order(zahra, 2_000_000, placed_at=feb)  # 200 points, pending until 28 February
    order_sync_points(order=order, now=feb)

    report = liability_report(now=feb, months=2)
    assert (report.available_points, report.pending_points, report.outstanding_points) == (
        0,
        200,
        200,
    )
    assert (report.outstanding_cost, report.currency) == (Decimal(20_000), "IRT")
    assert (report.expiring_30, report.expiring_60) == (200, 200)  # expires 14 March
    jan, feb_flow = report.months
    assert (jan.month, jan.adjusted, jan.redeemed, jan.expired) == (date(2025, 1, 1), 600, 200, 0)
    assert (feb_flow.month, feb_flow.earned, feb_flow.expired) == (date(2025, 2, 1), 200, 400)
    # 400 expired, 200 spent: two thirds of what left the program was breakage.
    assert report.breakage_rate == Decimal("0.6667")


@pytest.mark.django_db
def test_an_empty_program_has_no_liability_and_no_breakage_rate() -> None:
    report = liability_report(now=JAN, months=3)
    assert (report.outstanding_points, report.outstanding_cost, report.breakage_rate) == (
        0,
        Decimal(0),
        None,
    )
    assert [m.month for m in report.months] == [
        date(2024, 11, 1),
        date(2024, 12, 1),
        date(2025, 1, 1),
    ]
