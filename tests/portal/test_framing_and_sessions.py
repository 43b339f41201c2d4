"""The portal inside the shop's pages (frame-ancestors), the per-address limit on sign-in
links, and "sign out on all devices"."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signing import get_cookie_signer
from django.test import Client
from django.utils import timezone

from tests.portal.conftest import Club, signed_in
from vafa.dashboard.portal import access
from vafa.dashboard.portal.framing import frame_ancestors
from vafa.dashboard.portal.services import LOGIN_SOURCE
from vafa.messaging import tokens
from vafa.messaging.models import OutboxMessage

SHOP = "https://shop.example"


# -- framing --------------------------------------------------------------------------------


def test_portal_pages_may_be_framed_by_the_shop_and_staff_pages_by_no_one(
    club: Club, client: Client, settings: Any
) -> None:
    settings.VAFA_PORTAL_FRAME_ANCESTORS = f"{SHOP}, https://*.shop.example"
    for response in (client.get("/p/"), signed_in(client, club.members["fa"]).get("/p/")):
        assert response.status_code == 200
        assert "X-Frame-Options" not in response
        assert response["Content-Security-Policy"] == (
            f"frame-ancestors 'self' {SHOP} https://*.shop.example")
    for url in ("/dashboard/", "/admin/login/"):
        staff_page = Client().get(url)
        assert staff_page["X-Frame-Options"] == "DENY"
        assert "frame-ancestors" not in staff_page.get("Content-Security-Policy", "")


def test_the_member_cookie_reaches_the_shops_frame_only_over_https_when_framing_is_allowed(
    club: Club, settings: Any
) -> None:
    token = access.link_token(customer_id=club.members["fa"].pk, kind=access.EMBED,
                              expires_at=timezone.now() + timedelta(minutes=5))
    settings.VAFA_PORTAL_FRAME_ANCESTORS = SHOP
    framed = Client().get(f"/p/e/{token}/", secure=True).cookies[access.SESSION_COOKIE]
    assert framed["samesite"] == "None" and framed["secure"] and framed["httponly"]
    plain = Client().get(f"/p/e/{token}/").cookies[access.SESSION_COOKIE]
    assert plain["samesite"] == "Lax"  # browsers refuse SameSite=None without Secure
    settings.VAFA_PORTAL_FRAME_ANCESTORS = ""
    unframed = Client().get(f"/p/e/{token}/", secure=True).cookies[access.SESSION_COOKIE]
    assert unframed["samesite"] == "Lax"


def test_without_the_setting_only_the_portals_own_site_may_frame_it(
    client: Client, settings: Any, db: None
) -> None:
    settings.VAFA_PORTAL_FRAME_ANCESTORS = None
    assert client.get("/p/")["Content-Security-Policy"] == "frame-ancestors 'self'"


@pytest.mark.parametrize("value", [
    "shop.example",                       # no scheme
    "https://shop.example/path",          # a path is not an origin
    "https://shop.example; script-src *",  # would smuggle a directive into the header
    "'unsafe-inline'",
    "javascript://x",
])
def test_it_refuses_a_setting_that_is_not_a_list_of_origins(
    settings: Any, value: str
) -> None:
    settings.VAFA_PORTAL_FRAME_ANCESTORS = [value]
    with pytest.raises(ImproperlyConfigured, match="VAFA_PORTAL_FRAME_ANCESTORS"):
        frame_ancestors()


# -- sign-in link limit ---------------------------------------------------------------------


def test_one_address_asking_for_links_in_a_loop_is_told_to_wait_and_sends_nothing_more(
    club: Club, client: Client, settings: Any
) -> None:
    settings.VAFA_PORTAL_SIGN_IN_LIMIT = 3
    for _ in range(3):
        assert client.post("/p/sign-in/", {"identifier": "nobody@example.com"}).status_code == 200
    throttled = client.post("/p/sign-in/", {"identifier": "olivia@example.com"},
                            HTTP_ACCEPT_LANGUAGE="en")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) == access.SIGN_IN_WINDOW_MINUTES * 60
    page = throttled.content.decode()
    assert 'id="sign-in-throttled"' in page and "Please wait a few minutes" in page
    assert not OutboxMessage.objects.filter(source=LOGIN_SOURCE).exists()
    # Another address is not held back by the first one's requests.
    other = client.post("/p/sign-in/", {"identifier": "olivia@example.com"},
                        REMOTE_ADDR="203.0.113.9")
    assert other.status_code == 200
    assert OutboxMessage.objects.filter(source=LOGIN_SOURCE).count() == 1


def test_the_limit_counts_per_window_and_an_ipv6_subscriber_by_their_slash_64(
    settings: Any,
) -> None:
    settings.VAFA_PORTAL_SIGN_IN_LIMIT = 2
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    allowed = [access.sign_in_request_allowed(client_ip=ip, now=now)
               for ip in ("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:abcd::9")]
    assert allowed == [True, True, False]
    assert access.sign_in_request_allowed(client_ip="2001:db8:1:3::1", now=now)
    later = now + timedelta(minutes=access.SIGN_IN_WINDOW_MINUTES)
    assert access.sign_in_request_allowed(client_ip="2001:db8:1:2::1", now=later)


# -- sign out on all devices -----------------------------------------------------------------


def test_signing_out_everywhere_ends_the_members_sessions_on_every_device(club: Club) -> None:
    zahra, olivia = club.members["fa"], club.members["en"]
    phone = signed_in(Client(), zahra)
    laptop = signed_in(Client(), zahra)
    someone_else = signed_in(Client(), olivia)
    assert 'id="points-available"' in laptop.get("/p/").content.decode()

    answer = phone.post("/p/sign-out-everywhere/", HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="signed-out-everywhere"' in answer.content.decode()
    for device in (phone, laptop):
        page = device.get("/p/").content.decode()
        assert 'id="points-available"' not in page and 'name="identifier"' in page
        assert device.post("/p/referral/").status_code == 401
    assert 'id="points-available"' in someone_else.get("/p/").content.decode()
    # A new link signs her in again, under the new version.
    assert 'id="points-available"' in signed_in(laptop, zahra).get("/p/").content.decode()


def test_links_made_before_signing_out_everywhere_stop_working(club: Club) -> None:
    zahra = club.members["fa"]
    expires = timezone.now() + timedelta(minutes=access.MAGIC_LINK_MINUTES)
    emailed = access.link_token(customer_id=zahra.pk, expires_at=expires, kind=access.MAGIC)
    signed_in(Client(), zahra).post("/p/sign-out-everywhere/")

    opened = Client().get(f"/p/e/{emailed}/", HTTP_ACCEPT_LANGUAGE="en")
    assert opened.status_code == 410
    assert 'id="link-expired"' in opened.content.decode()
    assert access.SESSION_COOKIE not in opened.cookies
    fresh = access.link_token(customer_id=zahra.pk, expires_at=expires, kind=access.MAGIC)
    member = Client()
    assert member.get(f"/p/e/{fresh}/").status_code == 302
    assert 'id="points-available"' in member.get("/p/").content.decode()


def test_a_link_from_before_versions_works_until_the_first_sign_out_everywhere(
    club: Club,
) -> None:
    zahra = club.members["fa"]
    expires = int((timezone.now() + timedelta(minutes=10)).timestamp())
    old = tokens.seal(struct.pack(">QqB", zahra.pk, expires, 0), purpose=access.LINK_PURPOSE)
    assert Client().get(f"/p/e/{old}/").status_code == 302
    signed_in(Client(), zahra).post("/p/sign-out-everywhere/")
    assert Client().get(f"/p/e/{old}/").status_code == 410


def test_a_session_cookie_from_before_versions_still_works_until_the_first_sign_out_everywhere(
    club: Club,
) -> None:
    zahra = club.members["fa"]
    client = Client()
    old_value = get_cookie_signer(salt=access.SESSION_COOKIE + access.SESSION_SALT).sign(
        str(zahra.pk))
    client.cookies[access.SESSION_COOKIE] = old_value
    assert 'id="points-available"' in client.get("/p/").content.decode()
    signed_in(Client(), zahra).post("/p/sign-out-everywhere/")
    assert 'id="points-available"' not in client.get("/p/").content.decode()


def test_the_portal_page_offers_signing_out_on_all_devices(club: Club) -> None:
    page = signed_in(Client(), club.members["en"]).get("/p/", HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="sign-out-everywhere"' in page.content.decode()
    assert timezone.now()  # the portal reads the real clock


def test_a_malformed_frame_ancestors_setting_stops_the_server_at_start_up(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vafa.settings", "VAFA_HOME": str(tmp_path),
           "VAFA_PORTAL_FRAME_ANCESTORS": "https://shop.example javascript:alert(1)"}
    run = subprocess.run([sys.executable, "-m", "django", "check"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "VAFA_PORTAL_FRAME_ANCESTORS: 'javascript:alert(1)' is not an origin" in run.stderr
