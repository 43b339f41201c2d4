"""A member's golden path in a real browser, in Persian, Arabic and English on a 375 px phone:
open the portal from the shop's embed link, redeem a reward, change message preferences.

Debian's Chromium through Playwright against Django's `live_server`. Screenshots go to the
test's temporary directory; with `VAFA_UPDATE_SCREENSHOTS=1` they are written to
`docs/screenshots/portal-*-{fa,ar,en}.png` instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.dashboard.visible import latin_digits
from tests.portal.conftest import build_club
from tests.support.browser import required_chromium
from vafa.dashboard.portal import access

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 375, "height": 812}
LANGUAGES = (("fa", "rtl"), ("ar", "rtl"), ("en", "ltr"))


def _shot(name: str, tmp_path: Path) -> str:
    if os.environ.get("VAFA_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return str(DOCS_SCREENSHOTS / name)
    return str(tmp_path / name)


@pytest.fixture
def portal_links(
    django_db_serialized_rollback: None, live_server: Any, transactional_db: None
) -> dict[str, str]:
    """The club behind the live server and one embed link per member, made before the browser
    starts (Playwright runs an event loop in this thread; Django refuses database calls there).
    Serialized rollback keeps the rows other tests' migrations seeded."""
    club = build_club()
    expires = timezone.now() + timedelta(minutes=30)
    links = {
        language: live_server.url
        + f"/p/e/{access.link_token(customer_id=c.pk, expires_at=expires, kind=access.EMBED)}/"
        for language, c in club.members.items()
    }
    expired = access.link_token(
        customer_id=club.members["fa"].pk, expires_at=timezone.now(), kind=access.MAGIC
    )
    links["expired"] = f"{live_server.url}/p/e/{expired}/"
    return links


@pytest.fixture
def browser(portal_links: dict[str, str]) -> Iterator[Any]:
    with required_chromium() as launched:
        yield launched


def _fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"horizontal overflow at 375 px: {width}px wide ({page.url})"


def _watch(page: Any, server: str, problems: list[str], expected_error: str) -> None:
    # A failed load is reported by URL through "response" (the favicon of messaging's
    # preference page is the browser's own request and is not a page problem).
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda r: (
            problems.append(f"HTTP {r.status} {r.url[:90]}")
            if r.status >= 400 and r.url != expected_error
            else None
        ),
    )
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((server, "data:"))
            else problems.append(f"request off the server: {r.url[:90]}")
        ),
    )


def test_a_member_opens_the_portal_redeems_a_reward_and_changes_preferences_in_each_language(
    portal_links: dict[str, str], browser: Any, tmp_path: Path
) -> None:
    server = portal_links["en"].split("/p/", 1)[0]
    problems: list[str] = []
    for language, direction in LANGUAGES:
        context = browser.new_context(
            locale=language,
            viewport=PHONE,
            device_scale_factor=1,
            is_mobile=True,
            has_touch=True,
        )
        page = context.new_page()
        _watch(page, server, problems, portal_links["expired"])
        try:
            page.goto(portal_links["expired"])  # the browser's language: no member yet
            page.wait_for_selector("#link-expired")
            assert page.get_attribute("html", "lang") == language
            _fits(page)
            page.screenshot(path=_shot(f"portal-sign-in-{language}.png", tmp_path))

            page.goto(portal_links[language])
            page.wait_for_selector("#points-available")
            assert page.url == f"{server}/p/"
            assert page.get_attribute("html", "lang") == language
            assert page.get_attribute("html", "dir") == direction
            assert page.evaluate("document.fonts.check('16px Vazirmatn')")
            _fits(page)
            if language == "fa":
                assert latin_digits(page.content()) == []
            page.screenshot(path=_shot(f"portal-{language}.png", tmp_path), full_page=True)
            scope = page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)")
            assert scope == f"{server}/p/"  # the push service worker covers the portal
            assert page.is_visible("#push-on")

            page.locator(".reward", has_text="Free coffee").locator("button.primary").click()
            page.wait_for_selector("#redeemed code.coupon")
            code = page.inner_text("#redeemed code.coupon")
            assert code.startswith("CAFE-")
            _fits(page)
            if language == "fa":
                assert latin_digits(page.content()) == []
            page.locator("#redeemed").scroll_into_view_if_needed()
            page.screenshot(path=_shot(f"portal-redeemed-{language}.png", tmp_path))

            page.reload()  # the code stays on the page, and only one was issued
            page.wait_for_selector("#my-codes")
            assert page.locator("#my-codes li").count() == 1
            assert page.inner_text("#my-codes code") == code

            page.click("#preferences-link")
            page.wait_for_selector("input[name=topic_offers]")
            assert page.get_attribute("html", "dir") == direction
            page.uncheck("input[name=topic_offers]")
            page.click("button.primary")
            page.wait_for_selector("p.notice[role=status]")
            _fits(page)
            if language == "fa":
                assert latin_digits(page.content()) == []
            page.screenshot(
                path=_shot(f"portal-preferences-{language}.png", tmp_path), full_page=True
            )
            page.goto(page.url)  # read back what was stored
            assert not page.is_checked("input[name=topic_offers]")
            assert page.is_checked("input[name=topic_news]")
        finally:
            context.close()
    assert problems == []


# Chromium here has no push service to subscribe with (no network), so the browser's
# PushManager is replaced by one that hands out a made-up subscription; everything else (the
# service worker, the permission, the portal's script, CSRF and the server) is real.
FAKE_PUSH = """
(() => {
  const made = {
    endpoint: "https://push.example/send/walk",
    toJSON() { return {endpoint: this.endpoint, keys: {p256dh: "BPk3pE1x", auth: "c2VjcmV0"}}; },
  };
  PushManager.prototype.subscribe = function (options) {
    if (!(options.applicationServerKey instanceof Uint8Array)
        || options.applicationServerKey.length !== 65) {
      return Promise.reject(new Error("bad VAPID key"));
    }
    sessionStorage.setItem("fake-push", "1");  // a real subscription outlives the page
    return Promise.resolve(made);
  };
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(sessionStorage.getItem("fake-push") ? made : null);
  };
})();
"""


def test_a_member_turns_on_notifications_and_the_portal_remembers_it(
    portal_links: dict[str, str], browser: Any
) -> None:
    server = portal_links["en"].split("/p/", 1)[0]
    context = browser.new_context(locale="en", viewport=PHONE)
    context.grant_permissions(["notifications"], origin=server)
    context.add_init_script(FAKE_PUSH)
    page = context.new_page()
    problems: list[str] = []
    _watch(page, server, problems, portal_links["expired"])
    try:
        page.goto(portal_links["en"])
        page.click("#push-on")
        page.wait_for_function(
            "document.querySelector('#push .status').textContent.includes('on for this device')"
        )
        assert page.is_hidden("#push-on")
        page.reload()  # the server now knows this device: the page says so at once
        page.wait_for_function(
            "document.querySelector('#push .status').textContent.includes('on for this device')"
        )
        assert page.get_attribute("#push", "data-subscribed") == "1"
    finally:
        context.close()
    assert problems == []
