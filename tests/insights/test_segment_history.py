"""Segment history: each analysis run records who entered which RFM segment, and only changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shop import load_shop
from vafa.customers.models import Order, OrderStatus
from vafa.insights.models import CustomerScore, RfmSegment, SegmentHistory
from vafa.insights.services import insights_refresh

pytestmark = pytest.mark.django_db


def test_a_first_run_records_every_scored_customer_entering_a_segment(tmp_path: Path) -> None:
    load_shop(tmp_path / "shop", customers=60, seed=5)
    run = insights_refresh(triggered_by="test")
    history = SegmentHistory.objects.filter(run=run)
    assert history.count() == CustomerScore.objects.count() > 0
    assert set(history.values_list("previous_segment", flat=True)) == {""}
    stored = dict(CustomerScore.objects.values_list("customer_id", "rfm_segment"))
    assert dict(history.values_list("customer_id", "rfm_segment")) == stored


def test_a_later_run_records_only_the_customers_who_moved(tmp_path: Path) -> None:
    load_shop(tmp_path / "shop", customers=60, seed=5)
    first = insights_refresh(triggered_by="test")
    before = dict(CustomerScore.objects.values_list("customer_id", "rfm_segment"))
    # Champions' recent orders turn out to be cancelled: they keep only their first purchase.
    champions = list(CustomerScore.objects.filter(rfm_segment=RfmSegment.CHAMPIONS)
                     .values_list("customer_id", flat=True)[:5])
    assert champions
    for pk in champions:
        first_order = Order.objects.filter(customer_id=pk).order_by("placed_at").first()
        assert first_order is not None
        Order.objects.filter(customer_id=pk).exclude(pk=first_order.pk).update(
            status=OrderStatus.CANCELLED)
    second = insights_refresh(as_of=first.as_of, triggered_by="test")
    after = dict(CustomerScore.objects.values_list("customer_id", "rfm_segment"))
    moved = {pk for pk, segment in after.items() if before.get(pk) != segment}
    assert moved, "the test needs at least one customer to change segment"
    changes = SegmentHistory.objects.filter(run=second)
    assert set(changes.values_list("customer_id", flat=True)) == moved
    for change in changes:
        assert change.previous_segment == before[change.customer_id]
        assert change.rfm_segment == after[change.customer_id]
