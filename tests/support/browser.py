"""Launch Debian's Chromium through Playwright for browser tests.

Playwright cannot download its own browser here, so tests drive `/usr/bin/chromium` with the
flags below: no sandbox (containers), no GPU, and none of Chromium's own background traffic
(component updates, sync, first-run pings), so that a test can assert that a page made no network
request at all.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_missing() -> str | None:
    """Why Chromium-driven tests cannot run here, or None when they can."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium `Browser`, closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = str(CHROMIUM) if CHROMIUM.exists() else str(shutil.which("chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def required_chromium() -> Iterator[Any]:
    """`chromium()` for a test that needs it: skips locally, fails under VAFA_REQUIRE_SERVICES=1
    when Debian's Chromium is not installed."""
    from tests.conftest import require_service

    reason = chromium_missing()
    if reason:
        require_service("Chromium", reason)
    with chromium() as launched:
        yield launched
