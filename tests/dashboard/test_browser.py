"""The golden path in a real browser: log in through the admin form, read the overview, open a
customer and adjust their points, in Persian, Arabic and English, fitting a phone's screen.

Runs Debian's Chromium through Playwright (`tests/support/browser.py`) against Django's
`live_server`. Screenshots go to the test's temporary directory; with `VAFA_UPDATE_SCREENSHOTS=1`
the desktop ones are written to `docs/screenshots/dashboard-{overview,customer}-{fa,ar,en}.png`
instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from tests.dashboard.conftest import STAFF_PASSWORD
from tests.dashboard.visible import latin_digits
from tests.support.browser import required_chromium
from tests.support.shop import load_shop
from vafa.core.roles import OWNER
from vafa.insights.services import insights_refresh

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEADLINE = (datetime.now(UTC).date() + timedelta(days=200)).isoformat()
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium per test, started after the database fixtures: Playwright's sync API runs an
    event loop in this thread while the browser is open, and Django refuses to set up the
    database from there (SynchronousOnlyOperation), so the shared module-scoped one won't do."""
    with required_chromium() as launched:
        yield launched


# The vendored font is loaded and is what the page's text is set in.
VAZIRMATN_IN_USE = """async () => {
  await document.fonts.ready;
  const loaded = [...document.fonts].some(
    f => f.family.replace(/["']/g, "") === "Vazirmatn" && f.status === "loaded");
  return loaded && getComputedStyle(document.body).fontFamily.includes("Vazirmatn");
}"""


def _screenshot_path(name: str, tmp_path: Path, *, docs: bool) -> Path:
    if docs and os.environ.get("VAFA_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS / name
    return tmp_path / name


def _check_fits(page: Any, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(300)  # let Plotly's responsive charts re-lay out
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"horizontal overflow at {width}px: {scroll_width}px wide"


@pytest.fixture
def shop_on_server(
    django_db_serialized_rollback: None, live_server: Any, transactional_db: None, tmp_path: Path
) -> str:
    """A staff member and an analysed shop behind the live server; returns the server's URL.

    Serialized rollback: the flush after this test must not re-create content types with new
    ids, or a later test that restores serialized rows (feedback's race test) hits a clash.

    Made before the browser starts: Playwright runs an event loop in the test's thread, and
    Django refuses database calls from there.
    """
    owner = User.objects.create_user("shirin", password=STAFF_PASSWORD, is_staff=True)
    owner.groups.add(Group.objects.get_or_create(name=OWNER)[0])
    load_shop(tmp_path / "shop", customers=150, seed=11)
    insights_refresh(triggered_by="test")
    return str(live_server.url)


def _watch(page: Any, server: str, problems: list[str]) -> None:
    """Collect console errors, failed responses, page errors and requests off the server."""
    # A failed load is reported by URL (the admin login page asks for a favicon).
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    page.on(
        "response",
        lambda res: (
            problems.append(f"HTTP {res.status}: {res.url[:80]}")
            if res.status >= 400 and not res.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "request",
        lambda req: (
            None
            if req.url.startswith((server, "data:"))
            else problems.append(f"request off the server: {req.url[:80]}")
        ),
    )


def _shoot(page: Any, name: str, tmp_path: Path) -> None:
    """A phone-width check and screenshot, then the desktop one (kept in docs/ on request)."""
    _check_fits(page, 375)
    page.screenshot(path=str(tmp_path / f"{name}-375.png"), full_page=True)
    _check_fits(page, 1280)
    page.screenshot(path=str(_screenshot_path(f"{name}.png", tmp_path, docs=True)),
                    full_page=True)


def test_the_golden_path_in_persian_arabic_and_english(
    shop_on_server: str, browser: Any, tmp_path: Path
) -> None:
    """Sign in, read the overview, open a slipping customer, adjust their points: in each
    language, with no overflow on a phone, no Latin digit in Persian or Arabic, nothing
    fetched from another server."""
    server = shop_on_server
    context = browser.new_context(
        locale="fa", viewport={"width": 1280, "height": 900}, device_scale_factor=1
    )
    page = context.new_page()
    problems: list[str] = []
    _watch(page, server, problems)
    try:
        # The sign-in page in each language (the language cookie, as the switcher sets it).
        for lang, direction in (("ar", "rtl"), ("en", "ltr"), ("fa", "rtl")):
            context.add_cookies([{"name": "django_language", "value": lang, "url": server}])
            page.goto(f"{server}/dashboard/")
            assert "/admin/login/" in page.url
            assert page.get_attribute("html", "lang") == lang
            assert page.get_attribute("html", "dir") == direction
            assert page.evaluate(VAZIRMATN_IN_USE), lang
            if lang != "en":
                assert latin_digits(page.content()) == [], lang
            _shoot(page, f"login-{lang}", tmp_path)
        page.fill("#id_username", "shirin")
        page.fill("#id_password", STAFF_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("html[data-charts=ready]", timeout=30_000)
        assert page.url == f"{server}/dashboard/"

        for number, (lang, direction) in enumerate((("fa", "rtl"), ("ar", "rtl"), ("en", "ltr"))):
            if lang != "fa":
                page.goto(f"{server}/dashboard/")
                page.click(f".langs button[value={lang}]")
                page.wait_for_selector(f"html[lang={lang}][data-charts=ready]", timeout=30_000)
            assert page.get_attribute("html", "dir") == direction
            # Trends (2), the R×F grid, the Pareto curve and the cohort heatmap.
            assert page.locator(".plot-container").count() == 5
            assert page.evaluate("document.fonts.check('16px Vazirmatn')")
            if lang != "en":
                assert latin_digits(page.content()) == [], lang
            _shoot(page, f"dashboard-overview-{lang}", tmp_path)

            page.locator("table.saveable tbody a").nth(number).click()
            page.wait_for_selector("#adjust-points")
            assert "/dashboard/customers/" in page.url
            before = page.inner_text("[data-testid=points-available]")
            page.fill("#adjust-points input[name=points]", "250")
            page.fill("#adjust-points input[name=reason]", "golden path")
            page.click("#adjust-points button[type=submit]")
            page.wait_for_selector(".flash li.success")
            after = page.inner_text("[data-testid=points-available]")
            assert after != before
            if lang != "en":
                assert latin_digits(page.content()) == [], lang
            _shoot(page, f"dashboard-customer-{lang}", tmp_path)

            page.goto(f"{server}/dashboard/customers/")
            assert page.locator("table tbody tr").count() > 0
            if lang != "en":
                assert latin_digits(page.content()) == [], lang
            _shoot(page, f"dashboard-customers-{lang}", tmp_path)

            page.goto(f"{server}/dashboard/goals/")
            if number == 0:  # set one goal; it shows, with its progress, in every language
                page.fill("input[name=name]", "golden path goal")
                page.select_option("select[name=metric]", index=1)
                page.fill("input[name=target]", "5")
                page.fill("input[name=deadline]", DEADLINE)
                page.click("form.form button[type=submit]")
                page.wait_for_selector("article.goal")
            assert page.locator("article.goal").count() == 1
            if lang != "en":
                assert latin_digits(page.content()) == [], lang
            _shoot(page, f"dashboard-goals-{lang}", tmp_path)
    finally:
        context.close()
    assert problems == []
