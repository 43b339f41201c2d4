"""The overview's later sections: loyalty liability, referral and survey response rates, the
R×F grid, the Pareto curve and the cohort heatmap, all read from the stored run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.dashboard.visible import latin_digits
from tests.support.shop import load_shop
from vafa.customers.models import Customer, Order
from vafa.feedback.models import Survey, SurveyInvitation, SurveyResponse, Trigger
from vafa.insights.models import AnalysisRun
from vafa.insights.services import insights_refresh
from vafa.loyalty.services import points_adjust

pytestmark = pytest.mark.db


@pytest.fixture
def rich_shop(db: None, tmp_path: Path, settings: Any) -> AnalysisRun:
    """A synthetic shop with points handed out and NPS answers to half of 20 invitations
    (sent in the last Gregorian quarter, which the KPIs compare here)."""
    settings.VAFA_REPORT_PERIOD = "Q"
    load_shop(tmp_path / "shop", customers=120, seed=3)
    last = Order.objects.order_by("-placed_at").values_list("placed_at", flat=True).first()
    assert last is not None
    nps = Survey.objects.get(slug="nps")
    for index, customer in enumerate(Customer.objects.order_by("pk")[:20]):
        invitation = SurveyInvitation.objects.create(
            customer=customer, survey=nps, trigger=Trigger.MANUAL, token=f"t{index}", created_at=last - dt.timedelta(days=3),
            expires_at=last + dt.timedelta(days=30),
        )
        if index % 2 == 0:
            SurveyResponse.objects.create(
                invitation=invitation, customer=customer, survey=nps, score=9 if index % 4 else 3,
                answered_at=last - dt.timedelta(days=2),
            )
        points_adjust(customer=customer, points=100, reason="welcome", actor="test",
                      idempotency_key=f"welcome-{index}", now=last)
    run = insights_refresh(triggered_by="test")
    assert run.status == AnalysisRun.Status.DONE, run.error
    return run


def test_the_run_stores_the_new_numbers_and_the_overview_shows_them_in_english_and_persian(
    client: Client, staff: User, rich_shop: AnalysisRun
) -> None:
    # One test for both (building the shop and analysing it is the slow part).
    platform = rich_shop.summary["platform"]
    assert platform["liability"]["outstanding_points"] == 20 * 100
    assert float(platform["referral_rate"]["current"]) == 0.0  # no referrals in this shop
    # 10 answers to 20 invitations, all sent in the current period (issue 7's definition).
    series = rich_shop.summary["kpis"]["series"]["response_rate"]
    assert series[-1]["value"] == pytest.approx(50.0)

    client.force_login(staff)
    en = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for text in ("Points programme", "Points outstanding", "2,000", "Points liability",
                 "Referral rate", "Survey response rate", "NPS", "Where the value is",
                 "Cohorts", 'data-figure="chart-', "-rfm-grid", "-pareto", "-cohort-retention"):
        assert text in en, text
    fa = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert "۲٬۰۰۰" in fa
    cards = en.split('aria-label="Key indicators"', 1)[1].split("</section>", 1)[0]
    assert "Survey response rate" in cards and "50.0%" in cards
    assert latin_digits(fa) == []
