"""A person unsubscribes in a real browser (Debian's Chromium through Playwright against the
live server), in Persian and English: the link from the email shows the preference page, its
button unsubscribes without a cookie or a redirect, and the page offers the exit survey, which
opens in the customer's language."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps as django_apps

from tests.messaging.conftest import make_customer
from tests.support.browser import required_chromium
from vafa.customers.models import Channel
from vafa.messaging import tokens

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def unsubscribe_links(
    live_server: Any, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """One email unsubscribe link per language, made before the browser starts (Playwright
    runs an event loop in this thread and Django refuses database calls there)."""
    monkeypatch.setenv("VAFA_BASE_URL", live_server.url)  # where survey links point
    # An earlier transactional test may have flushed the seeded exit survey: seed it again
    # with the feedback migration's own function (serialized rollback clashes with such
    # flushes on content types).
    seed = importlib.import_module("vafa.feedback.migrations.0004_exit_survey")
    seed.create(django_apps, None)
    links = {}
    for language, name in (("fa", "زهرا"), ("en", "Olivia")):
        customer = make_customer(f"browser-{language}", first_name=name, language=language,
                                 email=f"{language}@example.com")
        token = tokens.recipient_token(customer_id=customer.pk, channel=Channel.EMAIL)
        links[language] = f"{live_server.url}/m/unsubscribe/{token}/"
    return links


@pytest.fixture
def browser(unsubscribe_links: dict[str, str]) -> Iterator[Any]:
    with required_chromium() as launched:
        yield launched


@pytest.mark.parametrize(("language", "direction"), [("fa", "rtl"), ("en", "ltr")])
def test_a_person_unsubscribes_and_is_offered_the_exit_survey_in_their_language(
    browser: Any, unsubscribe_links: dict[str, str], language: str, direction: str
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    response = page.goto(unsubscribe_links[language])
    assert response is not None and response.status == 200
    assert page.get_attribute("html", "dir") == direction
    with page.expect_navigation():
        page.click("form[action*='/m/unsubscribe/'] button[type=submit]")
    assert page.url == unsubscribe_links[language]  # answered in place, no redirect
    assert page.get_attribute("html", "lang") == language
    assert context.cookies() == []  # the signed link is the key: no session, no CSRF cookie
    survey_link = page.locator("#exit-survey ~ p a")
    assert survey_link.count() == 1
    with page.expect_navigation():
        survey_link.click()
    assert "/f/" in page.url
    assert page.get_attribute("html", "lang") == language
    context.close()
