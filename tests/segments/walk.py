"""Helpers for walking the dashboard in Chromium: log in, watch for problems, check the fit,
and decide where a screenshot goes (`docs/screenshots/` only with VAFA_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, User

from tests.dashboard.conftest import STAFF_PASSWORD
from vafa.core.roles import OWNER

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LATIN_DIGIT = re.compile(r"[0-9]")


def make_owner() -> User:
    """The shop's owner (made before the browser starts: Django refuses database calls from
    Playwright's event-loop thread)."""
    user = User.objects.create_user("shirin", password=STAFF_PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=OWNER)[0])
    return user


def watch(page: Any, server: str) -> list[str]:
    """Collect console errors, failed responses, page errors and requests off the server."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url[:80]}")
            if res.status >= 400 and not res.url.endswith("/favicon.ico") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("request", lambda req: None if req.url.startswith((server, "data:"))
            else problems.append(f"request off the server: {req.url[:80]}"))
    return problems


def log_in(page: Any, server: str, path: str) -> None:
    page.goto(f"{server}{path}")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "shirin")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state("load")
    assert page.url.startswith(f"{server}{path}")


def switch_language(page: Any, lang: str, direction: str) -> None:
    if page.get_attribute("html", "lang") != lang:
        page.click(f".langs button[value={lang}]")
        page.wait_for_selector(f"html[lang={lang}]")
    assert page.get_attribute("html", "dir") == direction


def check_fits(page: Any, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(150)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"horizontal overflow at {width}px: {scroll_width}px wide"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    if os.environ.get("VAFA_UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS / name
    return tmp_path / name


def latin_digits_in(page: Any, selector: str) -> list[str]:
    """Texts under `selector` that carry Latin digits (none may, in Persian or Arabic)."""
    texts: list[str] = page.locator(selector).all_inner_texts()
    return [text for text in texts if LATIN_DIGIT.search(text)]
