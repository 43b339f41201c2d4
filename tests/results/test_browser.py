"""The results pages in Chromium, in Persian, Arabic and English: the list of campaigns with
their uplift, then one campaign per variant; fits a phone and a desktop, digits localised."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.results.conftest import make_sent_campaign
from tests.segments.walk import (
    check_fits,
    latin_digits_in,
    log_in,
    make_owner,
    screenshot_path,
    switch_language,
    watch,
)
from tests.support.browser import required_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium per test, started after the database fixtures (see tests/dashboard)."""
    with required_chromium() as launched:
        yield launched


@pytest.fixture
def server(django_db_serialized_rollback: None, live_server: Any,
           transactional_db: None) -> tuple[str, int]:
    make_owner()
    return str(live_server.url), make_sent_campaign().pk


def test_a_marketer_reads_what_a_campaign_did_in_three_languages(
    server: tuple[str, int], browser: Any, tmp_path: Path
) -> None:
    url, campaign_id = server
    context = browser.new_context(locale="fa", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch(page, url)
    try:
        log_in(page, url, "/dashboard/results/")
        for lang, direction in (("fa", "rtl"), ("ar", "rtl"), ("en", "ltr")):
            page.goto(f"{url}/dashboard/results/")
            switch_language(page, lang, direction)
            assert page.locator("table.results tbody tr").count() == 1
            if lang != "en":
                assert latin_digits_in(page, "table.results td") == []
            check_fits(page, 375)
            page.screenshot(path=str(tmp_path / f"results-{lang}-375.png"), full_page=True)
            check_fits(page, 1280)
            page.screenshot(path=str(screenshot_path(f"dashboard-results-{lang}.png", tmp_path)),
                            full_page=True)

            page.click("table.results tbody th a")
            page.wait_for_url(f"**/dashboard/results/campaign:{campaign_id}/**")
            # Variant A, variant B, then all variants together.
            assert page.locator("table.results tbody tr").count() == 3
            assert page.locator(".uplift.good").count() >= 1  # A: 3/3 against 1/3
            if lang != "en":
                assert latin_digits_in(page, "table.results td") == []
            check_fits(page, 375)
            page.screenshot(path=str(tmp_path / f"result-{lang}-375.png"), full_page=True)
            check_fits(page, 1280)
            page.screenshot(
                path=str(screenshot_path(f"dashboard-result-detail-{lang}.png", tmp_path)),
                full_page=True)
    finally:
        context.close()
    assert problems == [], problems
