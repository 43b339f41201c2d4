"""The segment builder in Chromium, in Persian, Arabic and English: the live count follows the
filters, the page fits a phone and a desktop, numbers are in the language's digits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
from vafa.customers.models import Customer
from vafa.insights.segments import segment_save

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Chromium per test, started after the database fixtures (see tests/dashboard)."""
    with required_chromium() as launched:
        yield launched


@pytest.fixture
def server(django_db_serialized_rollback: None, live_server: Any,
           transactional_db: None) -> str:
    from django.utils import timezone

    make_owner()
    cities = ["تهران"] * 1200 + ["شیراز"] * 300 + ["Dubai"] * 45
    Customer.objects.bulk_create(
        [Customer(external_id=f"c{index}", city=city, gender="female" if index % 3 else "male")
         for index, city in enumerate(cities)])
    segment_save(name="مشتریان تهران", description="همه‌ی مشتریان تهران",
                 definition={"rules": [{"field": "city", "values": ["تهران"]}]},
                 now=timezone.now())
    return str(live_server.url)


def test_a_marketer_builds_a_segment_with_a_live_count_in_three_languages(
    server: str, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(locale="fa", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch(page, server)
    try:
        log_in(page, server, "/dashboard/segments/")
        for lang, direction, total, tehran in (("fa", "rtl", "۱٬۵۴۵", "۱٬۲۰۰"),
                                               ("ar", "rtl", "١٬٥٤٥", "١٬٢٠٠"),
                                               ("en", "ltr", "1,545", "1,200")):
            switch_language(page, lang, direction)
            assert page.inner_text("#live-count") == total
            page.select_option("select[name=city]", ["تهران"])
            page.wait_for_function(
                "(want) => document.getElementById('live-count').textContent === want", arg=tehran)
            assert page.evaluate("document.fonts.check('16px Vazirmatn')")
            if lang != "en":
                assert latin_digits_in(page, ".seg-list td.num, #live-count") == []
            check_fits(page, 375)
            page.screenshot(path=str(tmp_path / f"segments-{lang}-375.png"), full_page=True)
            check_fits(page, 1280)
            page.screenshot(path=str(screenshot_path(f"dashboard-segments-{lang}.png", tmp_path)),
                            full_page=True)
            page.reload()
        # Persian digits are read as digits; a minimum above the maximum is pointed out.
        page.select_option("select[name=city]", ["تهران"])
        page.fill("input[name=order_count__max]", "۰")
        page.wait_for_function("document.getElementById('live-count').textContent === '1,200'")
        page.fill("input[name=clv__min]", "10")
        page.fill("input[name=clv__max]", "5")
        page.wait_for_selector("#live-count[data-state=error]")
        assert page.locator(".filter.invalid[data-filter=clv]").count() == 1
        assert page.inner_text("#live-problem") == "The minimum is above the maximum."
    finally:
        context.close()
    # The invalid count answered 422 on purpose; nothing else may have gone wrong.
    unexpected = [line for line in problems
                  if not (line.startswith("HTTP 422") and "/dashboard/segments/count/" in line)]
    assert unexpected == [], unexpected
