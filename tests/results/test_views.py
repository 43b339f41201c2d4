"""The results pages through HTTP: uplift per flow and campaign, then per variant."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from vafa.messaging.campaigns.models import Campaign

pytestmark = pytest.mark.django_db


def test_the_list_shows_each_campaign_with_its_uplift(staff: User,
                                                      sent_campaign: Campaign) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    page = client.get("/dashboard/results/").content.decode()
    assert "Spring sale" in page
    assert f'href="/dashboard/results/campaign:{sent_campaign.pk}/?days=7"' in page
    # Treated 3/6 = 50.0%, control 2/6 = 33.3%: uplift +16.7 percentage points.
    assert "50.0% / 33.3%" in page
    assert "+16.7%" in page
    assert "95% interval:" in page
    # The interval of +16.7 points (3/6 against 2/6): Newcombe's method 10, computed by
    # vafa.analytics.uplift.newcombe_difference(3, 6, 2, 6) = (−0.3150, 0.5585).
    assert "-31.5% to +55.9%" in page


def test_the_detail_shows_each_variant_in_persian_digits(staff: User,
                                                         sent_campaign: Campaign) -> None:
    client = Client()
    client.force_login(staff)
    client.cookies["django_language"] = "fa"
    response = client.get(f"/dashboard/results/campaign:{sent_campaign.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'dir="rtl"' in page
    # Variant A: 3/3 = 100% treated against 1/3 = 33.3% control.
    assert "۱۰۰٫۰٪ / ۳۳٫۳٪" in page
    assert "Spring sale" in page
    assert not any(char in "0123456789" for char in _visible_numbers(page))


def _visible_numbers(page: str) -> str:
    """The text of the results table cells (where every number must be localised)."""
    import re

    cells = re.findall(r'<td class="num"[^>]*>(.*?)</td>', page, flags=re.S)
    return re.sub(r"<[^>]+>", "", " ".join(cells))


def test_the_window_can_be_changed(staff: User, sent_campaign: Campaign) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)
    page = client.get("/dashboard/results/?days=1").content.decode()
    assert "within 1 days" in page or "within 1 day" in page
    assert '<option value="1" selected>' in page


def test_an_unknown_source_is_not_found_and_support_may_not_look(
    staff: User, support_agent: User, analyst: User
) -> None:
    client = Client()
    client.force_login(staff)
    assert client.get("/dashboard/results/campaign:999/").status_code == 404
    agent = Client()
    agent.force_login(support_agent)
    assert agent.get("/dashboard/results/").status_code == 403
    reader = Client()
    reader.force_login(analyst)
    assert reader.get("/dashboard/results/").status_code == 200
