"""The client's address and scheme behind the deployment's own reverse proxies.

Behind nginx or caddy every request comes from the proxy's address and over plain HTTP, so
per-address limits (the member portal's sign-in links) would count the whole shop as one
visitor, and `request.is_secure()` would say no. With `VAFA_TRUSTED_PROXIES = n` (the number of
proxies of ours in front of the app, default 0), the client is the n-th address from the right
of `X-Forwarded-For`: entries further left were written by the client and can be forged, the
last n by our proxies. The scheme comes from `X-Forwarded-Proto` (settings.py turns on Django's
`SECURE_PROXY_SSL_HEADER` likewise). Without the setting nothing is read from those headers.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def forwarded_client(header: str, proxies: int) -> str | None:
    """The address our `proxies` saw the request come from, or None when the header holds
    fewer hops than that (a request that bypassed a proxy)."""
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    if proxies < 1 or len(hops) < proxies:
        return None
    return hops[-proxies]


class TrustedProxyMiddleware:
    """Sets `REMOTE_ADDR` to the client's address found by `forwarded_client`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.proxies = int(getattr(settings, "VAFA_TRUSTED_PROXIES", 0))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.proxies:
            client = forwarded_client(request.META.get("HTTP_X_FORWARDED_FOR", ""), self.proxies)
            if client:
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
