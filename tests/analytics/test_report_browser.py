"""The standalone report in a real browser: charts draw offline, without errors or requests.

Runs Debian's Chromium through Playwright (`tests/support/browser.py`). Each report is opened from
a `file://` URL; the test fails on any console error, page error, failed request or request to
anything but the file itself and inline `data:` URLs.

Full-page screenshots go to the test's temporary directory; with `VAFA_UPDATE_SCREENSHOTS=1` they
are written to `docs/screenshots/report-{fa,ar,en}.png` instead (the copies in the docs are
refreshed on purpose, not by every test run).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from vafa.analytics.report import write_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIXTURE = Path(__file__).parent / "fixtures" / "summary_example.json"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHARTS_IN_EXAMPLE = 14



@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    summary = json.loads(FIXTURE.read_text(encoding="utf-8"))
    folder = tmp_path_factory.mktemp("reports")
    return {lang: write_report(summary, folder / f"report-{lang}.html", lang=lang)
            for lang in ("fa", "ar", "en")}


def _screenshot_path(lang: str, tmp_path: Path) -> Path:
    if os.environ.get("VAFA_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS / f"report-{lang}.png"
    return tmp_path / f"report-{lang}.png"


@pytest.mark.parametrize("lang", ["fa", "ar", "en"])
def test_the_report_draws_every_chart_offline_without_errors(
        browser: Any, reports: dict[str, Path], lang: str, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url[:80]}"))
    page.on("request", lambda req: None if req.url.startswith(("file://", "data:"))
            else problems.append(f"network request: {req.url[:80]}"))
    try:
        page.goto(reports[lang].as_uri())
        page.wait_for_selector("html[data-charts=ready]", timeout=30_000)
        assert page.locator(".plot-container").count() == CHARTS_IN_EXAMPLE
        assert page.evaluate("document.fonts.check('16px Vazirmatn')")
        # Nothing wider than the page: no table or chart overflows sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280

        chart_text = page.evaluate(
            "Array.from(document.querySelectorAll('.plot-container svg text'))"
            ".map(t => t.textContent).join(' ')")
        hover_text = _hover_first_point(page)
        if lang == "fa":
            # Plotly drew no number of its own: ticks, cell labels and hovers are all Persian.
            assert re.search("[۰-۹]", chart_text)
            assert not re.search("[0-9]", chart_text), re.findall(".{0,15}[0-9].{0,15}", chart_text)
            assert re.search("[۰-۹]", hover_text) and not re.search("[0-9]", hover_text)
        if lang == "en":
            assert "42.1%" in hover_text  # retention in the last quarter, from the example

        shot = _screenshot_path(lang, tmp_path)
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size < 3_000_000
        assert problems == []
    finally:
        page.close()


def _hover_first_point(page: Any) -> str:
    """Hover the last point of the first chart (retention) and return the hover label's text."""
    point = page.locator(".plot-container").first.locator(".scatterlayer .trace").first \
        .locator(".point").last
    point.hover(force=True)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
    return str(page.locator(".hoverlayer .hovertext").first.text_content())
