"""The client's address behind the deployment's own proxies (`vafa.core.proxy`)."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from vafa.core.proxy import TrustedProxyMiddleware, forwarded_client


@pytest.mark.parametrize(("header", "proxies", "client"), [
    ("203.0.113.7", 1, "203.0.113.7"),
    ("1.2.3.4, 203.0.113.7", 1, "203.0.113.7"),  # the left entry came from the client: forged
    ("1.2.3.4, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
    ("203.0.113.7", 2, None),  # fewer hops than proxies: it bypassed one
    ("", 1, None),
    ("203.0.113.7", 0, None),
])
def test_the_client_is_the_address_our_outermost_proxy_saw(
    header: str, proxies: int, client: str | None
) -> None:
    assert forwarded_client(header, proxies) == client


def _seen(**settings: int) -> tuple[str, bool]:
    seen: dict[str, object] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen["ip"], seen["secure"] = request.META["REMOTE_ADDR"], request.is_secure()
        return HttpResponse()

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7",
        HTTP_X_FORWARDED_PROTO="https",
    )
    with override_settings(**settings):
        TrustedProxyMiddleware(view)(request)
    return str(seen["ip"]), bool(seen["secure"])


def test_forwarded_headers_count_only_when_proxies_are_declared() -> None:
    assert _seen(VAFA_TRUSTED_PROXIES=0) == ("10.0.0.1", False)
    assert _seen(VAFA_TRUSTED_PROXIES=1,
                 SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")) == (
        "203.0.113.7", True)
