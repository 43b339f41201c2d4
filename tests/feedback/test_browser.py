"""The churn-factors page in a real browser, in Persian and English: log in, read the reasons
by segment and over time and the detractors' words, fit a phone screen, take screenshots.

Screenshots go to the test's temporary directory; with `VAFA_UPDATE_SCREENSHOTS=1` they are
written to `docs/screenshots/feedback-churn-factors-{fa,en}.png` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from tests.support.browser import required_chromium
from vafa.customers.models import Customer
from vafa.feedback.models import Trigger
from vafa.feedback.selectors import survey_get
from vafa.feedback.services import exit_invitation_create, invitation_create, response_complete
from vafa.insights.models import AnalysisRun, CustomerScore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "a-long-test-password-17"
DEPARTURES = [
    ("at_risk", "price", 70, "قیمت ارسال خیلی بالا بود"),
    ("at_risk", "price", 40, ""),
    ("at_risk", "delivery", 10, "ارسال دیر رسید"),
    ("cant_lose", "service", 35, ""),
    ("hibernating", "elsewhere", 5, ""),
    ("hibernating", "price", 5, ""),
    ("champions", "messages", 65, ""),
]
COMMENTS = [(2, "ارسال دیر رسید و بسته‌بندی خراب بود"), (3, "Late delivery, broken box"),
            (6, "ارسال کند"), (8, "خوب بود"), (10, "کیفیت عالی")]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium per test, started after the database fixtures (see tests/dashboard)."""
    with required_chromium() as launched:
        yield launched


@pytest.fixture
def server_with_departures(
    django_db_serialized_rollback: None, live_server: Any, transactional_db: None
) -> str:
    owner = User.objects.create_user("shirin", password=PASSWORD, is_staff=True)
    owner.groups.add(Group.objects.get_or_create(name="owner")[0])
    now = timezone.now()
    run = AnalysisRun.objects.create(status="done")
    for n, (segment, reason, days_ago, detail) in enumerate(DEPARTURES):
        customer = Customer.objects.create(external_id=f"B{n}", language="fa")
        CustomerScore.objects.create(customer=customer, run=run, rfm_segment=segment,
                                     r_score=2, f_score=2, m_score=2, loyalty_label="lapsing")
        when = now - timedelta(days=days_ago)
        invitation = exit_invitation_create(customer=customer, trigger=Trigger.UNSUBSCRIBE,
                                            now=when)
        assert invitation is not None
        response_complete(invitation=invitation, data={"reason": reason, "detail": detail},
                          now=when)
    nps = survey_get(slug="nps")
    for n, (score, text) in enumerate(COMMENTS):
        customer = Customer.objects.create(external_id=f"N{n}")
        invitation = invitation_create(customer=customer, survey=nps, now=now)
        response_complete(invitation=invitation, data={"score": str(score), "reason": text},
                          now=now)
    return str(live_server.url)


def _screenshot_path(name: str, tmp_path: Path) -> Path:
    if os.environ.get("VAFA_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS / name
    return tmp_path / name


def test_staff_read_the_churn_factors_in_persian_then_english(
    server_with_departures: str, browser: Any, tmp_path: Path
) -> None:
    server = server_with_departures
    context = browser.new_context(locale="fa", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url[:80]}")
            if res.status >= 400 and not res.url.endswith("/favicon.ico") else None)
    page.on("request", lambda req: None if req.url.startswith((server, "data:"))
            else problems.append(f"request off the server: {req.url[:80]}"))
    try:
        page.goto(f"{server}/f/staff/churn-factors/")
        assert "/admin/login/" in page.url
        page.fill("#id_username", "shirin")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("table.reasons-by-group")
        for lang, direction, price, segment in (
            ("fa", "rtl", "قیمت‌ها بالا بود", "در معرض خطر"),
            ("en", "ltr", "Prices were too high", "At risk"),
        ):
            if lang != "fa":
                page.click(f".langs button[value={lang}]")
                page.wait_for_selector(f"html[lang={lang}] table.reasons-by-group")
            assert page.get_attribute("html", "dir") == direction
            # the most frequent reason comes first, the biggest group on top
            first_reason = page.inner_text("table.reasons-by-group thead th:nth-child(2)")
            assert first_reason.strip() == price
            first_row = page.inner_text("table.reasons-by-group tbody tr:first-child th")
            assert first_row.strip() == segment
            total = page.inner_text("table.reasons-by-group tfoot")
            assert ("۷" if lang == "fa" else "7") in total
            assert page.locator("table.reasons-over-time tbody tr").count() >= 2
            terms = page.inner_text(".card.terms >> nth=0")
            assert "ارسال" in terms  # what detractors write about
            page.set_viewport_size({"width": 375, "height": 800})
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"horizontal overflow at 375px in {lang}: {width}px"
            page.screenshot(path=str(tmp_path / f"feedback-churn-factors-{lang}-375.png"),
                            full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(_screenshot_path(f"feedback-churn-factors-{lang}.png",
                                                      tmp_path)), full_page=True)
    finally:
        context.close()
    assert problems == []
