"""Letting the shop frame the member portal ("the shop's signed embed"), and nobody else.

The site sends `X-Frame-Options: DENY` everywhere (Django's clickjacking middleware), which
also stops the shop from showing the portal inside its own pages. Portal pages (/p/) instead
send `Content-Security-Policy: frame-ancestors 'self' <the shop's origins>` and are exempt from
`X-Frame-Options`; browsers that understand CSP (all current ones) obey `frame-ancestors`. Staff
pages keep `DENY`.

The shop's origins come from the `VAFA_PORTAL_FRAME_ANCESTORS` setting: a list of origins, or
one string of origins separated by spaces or commas (as an environment variable gives it), e.g.
`https://shop.example https://*.shop.example`. The default is none: only the portal's own
site may frame it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

SETTING = "VAFA_PORTAL_FRAME_ANCESTORS"
CSP_HEADER = "Content-Security-Policy"
# An origin as CSP source expressions write it: scheme, host (optionally `*.` for every
# subdomain), optional port; no path, quotes, semicolons or spaces that could change the policy.
_ORIGIN = re.compile(
    r"^https?://(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
    r"(:[0-9]{1,5})?$"
)

View = Callable[..., HttpResponse]


def frame_ancestors() -> tuple[str, ...]:
    """The shop's origins allowed to frame the portal, checked; `ImproperlyConfigured` names
    the first one that is not an origin (`https://shop.example[:port]`)."""
    raw: Any = getattr(settings, SETTING, ()) or ()
    values = re.split(r"[\s,]+", raw) if isinstance(raw, str) else list(raw)
    origins: list[str] = []
    for value in values:
        origin = str(value).strip().rstrip("/").lower()
        if not origin:
            continue
        if not _ORIGIN.match(origin):
            raise ImproperlyConfigured(
                f"{SETTING}: {value!r} is not an origin like https://shop.example"
            )
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def frame_ancestors_policy() -> str:
    """The CSP directive portal pages send."""
    return " ".join(["frame-ancestors", "'self'", *frame_ancestors()])


def framable(view: View) -> View:
    """Let `view`'s pages be framed by the portal's own site and the shop's origins only."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.xframe_options_exempt = True
        existing = response.get(CSP_HEADER, "")
        if "frame-ancestors" not in existing:
            policy = frame_ancestors_policy()
            response[CSP_HEADER] = f"{existing.rstrip('; ')}; {policy}" if existing else policy
        return response

    return wrapper
