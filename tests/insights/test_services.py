"""The analysis of the shop's own database: scores stored per customer, runs recorded."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import F
from django.test import Client

from tests.support.shop import load_shop
from vafa.customers.models import Customer, Order, OrderStatus
from vafa.insights.models import AnalysisRun, CustomerScore
from vafa.insights.services import insights_refresh, orders_as_transactions

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tmp_path: Path) -> dict[str, int]:
    return load_shop(tmp_path / "shop", customers=150, seed=11)


def test_it_scores_every_customer_who_bought(shop: dict[str, int]) -> None:
    run = insights_refresh(triggered_by="test")
    assert run.status == AnalysisRun.Status.DONE, run.error
    buyers = Customer.objects.filter(
        orders__status__in=[OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED]
    ).distinct().count()
    assert run.customers == buyers == CustomerScore.objects.count()
    assert run.summary["customers"] == buyers
    assert set(run.summary) >= {"kpis", "rfm", "cohorts", "clv", "vip", "loyalty"}


def test_scores_are_plausible_and_vips_are_the_top_by_value(shop: dict[str, int]) -> None:
    insights_refresh()
    scores = CustomerScore.objects.all()
    assert all(0.0 <= s.p_alive <= 1.0 for s in scores if s.p_alive is not None)
    vips = scores.filter(vip=True)
    # Top 2.5% by predicted CLV (issue 4, A3), rounded up.
    assert 1 <= vips.count() <= max(1, round(scores.count() * 0.025) + 1)
    cheapest_vip = min(s.predicted_clv for s in vips)
    assert all(s.predicted_clv <= cheapest_vip for s in scores.filter(vip=False))
    assert all(isinstance(s.predicted_clv, Decimal) for s in scores)


def test_a_second_run_replaces_the_scores(shop: dict[str, int]) -> None:
    first = insights_refresh()
    second = insights_refresh()
    assert CustomerScore.objects.count() == first.customers == second.customers
    assert set(CustomerScore.objects.values_list("run_id", flat=True)) == {second.pk}


def test_refunds_lower_the_value_the_analysis_sees(shop: dict[str, int]) -> None:
    order = Order.objects.filter(status=OrderStatus.PAID).order_by("pk").first()
    assert order is not None
    before = orders_as_transactions().set_index("order_id").loc[order.external_id, "amount"]
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PARTIALLY_REFUNDED,
                                             refunded_amount=order.total / 4)
    after = orders_as_transactions().set_index("order_id").loc[order.external_id, "amount"]
    assert after == pytest.approx(before * 0.75)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.REFUNDED)
    assert order.external_id not in set(orders_as_transactions()["order_id"])


def test_a_failed_run_is_recorded_and_keeps_the_old_scores(shop: dict[str, int]) -> None:
    good = insights_refresh()
    # An observation end before the first order leaves nothing to analyse.
    failed = insights_refresh(as_of=datetime(2000, 1, 1, tzinfo=UTC).date())
    assert failed.status == AnalysisRun.Status.FAILED
    assert failed.error
    assert CustomerScore.objects.filter(run=good).count() == good.customers


def test_an_empty_shop_fails_with_a_clear_reason() -> None:
    run = insights_refresh()
    assert run.status == AnalysisRun.Status.FAILED
    assert "no paid orders" in run.error


def test_the_report_page_is_for_staff_only(shop: dict[str, int], admin_client: Client,
                                           client: Client) -> None:
    assert admin_client.get("/insights/report/").status_code == 404  # no run yet
    insights_refresh()
    response = admin_client.get("/insights/report/?lang=fa")
    assert response.status_code == 200
    assert b'dir="rtl"' in response.content
    assert admin_client.get("/insights/report/?lang=en").content.count(b'dir="ltr"') >= 1
    assert admin_client.get("/insights/summary.json").json()["customers"] > 0
    assert client.get("/insights/report/").status_code == 302  # to the login page


def test_the_stored_names_are_exactly_the_libraries() -> None:
    from vafa.analytics.diagnosis import LABELS
    from vafa.analytics.rfm import SEGMENTS
    from vafa.insights.models import LoyaltyLabel, RfmSegment

    assert list(RfmSegment.values) == list(SEGMENTS)
    assert sorted(LoyaltyLabel.values) == sorted(LABELS)


def test_the_score_list_reads_as_the_merchant_expects(shop: dict[str, int],
                                                      admin_client: Client) -> None:
    insights_refresh()
    page = admin_client.get("/admin/insights/customerscore/?vip__exact=1",
                            HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert "قهرمانان" in page or "وفادار" in page  # segment names, not ids
    assert re.search("[۰-۹]+٪", page)  # chance still active, in Persian digits


@pytest.mark.parametrize(("period", "name", "starts_on"), [
    ("JQ", "jalali_season", {"03-21", "03-20", "06-21", "06-22", "09-22", "09-23", "12-21",
                             "12-22"}),
    ("Q", "quarter", {"01-01", "04-01", "07-01", "10-01"}),
])
def test_the_kpis_compare_the_shops_reporting_period(
    shop: dict[str, int], settings: Any, period: str, name: str, starts_on: set[str]
) -> None:
    settings.VAFA_REPORT_PERIOD = period
    kpis = insights_refresh(triggered_by="test").summary["kpis"]
    assert kpis["period"] == name
    assert kpis["current_period"]["start"][5:] in starts_on  # a season starts on its equinox


def test_an_unknown_report_period_is_refused_with_the_choices(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from vafa.insights.services import report_period

    settings.VAFA_REPORT_PERIOD = "W"
    with pytest.raises(ImproperlyConfigured, match="JQ"):
        report_period()


def test_a_run_stores_purchase_totals_for_every_customer_that_match_the_orders(
    shop: dict[str, int],
) -> None:
    from django.db.models import Count, Max, Q, Sum

    from vafa.customers.models import PURCHASE_STATUSES
    from vafa.insights.models import CustomerStats

    Customer.objects.create(external_id="never-bought")
    run = insights_refresh(triggered_by="test")
    assert run.status == AnalysisRun.Status.DONE, run.error
    assert run.stats_at is not None and run.stats_last_customer == Customer.objects.latest(
        "pk").pk
    purchases = Q(orders__status__in=PURCHASE_STATUSES)
    expected = {
        row["pk"]: (row["n"], row["spent"] or Decimal(0), row["last"])
        for row in Customer.objects.values("pk").annotate(
            n=Count("orders", filter=purchases),
            spent=Sum(F("orders__total") - F("orders__refunded_amount"), filter=purchases),
            last=Max("orders__placed_at", filter=purchases))
    }
    stored = {row.customer_id: (row.order_count, row.total_spent, row.last_purchase_at)
              for row in CustomerStats.objects.all()}
    assert stored == expected
    assert stored[Customer.objects.get(external_id="never-bought").pk] == (0, Decimal(0), None)


def test_a_failed_run_keeps_the_purchase_totals_of_the_last_good_one(
    shop: dict[str, int],
) -> None:
    from vafa.insights.models import CustomerStats
    from vafa.insights.segments import stats_mark

    good = insights_refresh()
    before = CustomerStats.objects.count()
    insights_refresh(as_of=datetime(2000, 1, 1, tzinfo=UTC).date())
    assert CustomerStats.objects.count() == before
    mark = stats_mark()
    assert mark is not None and mark.at == good.stats_at
