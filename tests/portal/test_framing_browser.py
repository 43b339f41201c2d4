"""The shop shows the member portal inside its own page, in a real browser: Chromium loads a
shop page from another origin (a second local HTTP server) with two frames, the portal's embed
link and a staff page. The portal opens inside the frame; the staff page is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from tests.portal.conftest import build_club
from tests.support.browser import required_chromium
from vafa.dashboard.portal import access

pytestmark = [pytest.mark.browser]


@pytest.fixture
def shop(live_server: Any) -> Iterator[tuple[ThreadingHTTPServer, dict[str, str]]]:
    """A stand-in for the shop's site: one page whose frames are set per test in `pages`."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, pages
    finally:
        server.shutdown()
        server.server_close()


def test_the_shop_frames_the_portal_but_not_the_staff_pages(
    django_db_serialized_rollback: None, transactional_db: None, live_server: Any,
    shop: tuple[ThreadingHTTPServer, dict[str, str]], settings: Any,
) -> None:
    server, pages = shop
    # The same host name as the live server, another port: another origin, the same site, so
    # the member's Lax cookie is kept over plain HTTP (HTTPS shops get SameSite=None).
    host = live_server.url.split("://", 1)[1].rsplit(":", 1)[0]
    shop_origin = f"http://{host}:{server.server_address[1]}"
    settings.VAFA_PORTAL_FRAME_ANCESTORS = shop_origin
    member = build_club().members["en"]
    token = access.link_token(customer_id=member.pk, kind=access.EMBED,
                              expires_at=timezone.now() + timedelta(minutes=10))
    pages["/account.html"] = (
        "<!doctype html><title>Shop</title>"
        f'<iframe name="portal" src="{live_server.url}/p/e/{token}/"></iframe>'
        f'<iframe name="staff" src="{live_server.url}/dashboard/"></iframe>'
    )
    with required_chromium() as browser:
        context = browser.new_context(locale="en")
        page = context.new_page()
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "frame" in m.text else None)
        page.goto(f"{shop_origin}/account.html")
        portal = page.frame(name="portal")
        assert portal is not None
        portal.wait_for_selector("#points-available", timeout=10_000)
        page.wait_for_timeout(500)
        staff = page.frame(name="staff")
        assert staff is not None
        # A refused frame stays empty (Chromium shows its own error page, not ours).
        assert staff.evaluate("document.querySelector('main, form') === null")
        assert any("X-Frame-Options" in text or "frame-ancestors" in text for text in blocked)
        context.close()
