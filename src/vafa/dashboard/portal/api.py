"""The shop's signed embed: the REST endpoint that makes a portal link for one member.

The shop's backend calls it with its API key when a logged-in shopper opens "my points" and
sends the shopper to the returned URL (a link, a redirect or a new window: the portal is not
framed, as the site sends `X-Frame-Options: DENY`). The link opens the portal as that member
until it expires; like every write it needs an `Idempotency-Key` header, and a replay returns
the same link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import ConfigDict

from vafa.core.auth import ApiKeyAuth, request_api_key
from vafa.core.idempotency import idempotent_response
from vafa.customers.selectors import customer_get
from vafa.dashboard.portal import access, services

router = Router(auth=ApiKeyAuth(), tags=["portal"])


class PortalLinkIn(Schema):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(
        access.EMBED_LINK_MINUTES,
        ge=1,
        le=access.MAX_EMBED_LINK_MINUTES,
        description="How long the link works, in minutes.",
    )


class PortalLinkOut(Schema):
    url: str = Field(description="Opens the member portal signed in as this member.")
    expires_at: datetime


@router.post(
    "/members/{customer_id}/portal-link",
    response={201: PortalLinkOut},
    summary="A signed link to the member portal",
)
def portal_link(
    request: HttpRequest, customer_id: str, payload: PortalLinkIn | None = None
) -> HttpResponse:
    """A URL that signs the shopper in to the member portal as `customer_id` (the shop's own
    customer id) and works for `minutes` (default 15, at most a day)."""
    api_key = request_api_key(request)
    customer = customer_get(external_id=customer_id)
    minutes = payload.minutes if payload is not None else access.EMBED_LINK_MINUTES

    def perform() -> tuple[int, Any]:
        url, expires_at = services.portal_url(
            customer=customer, now=timezone.now(), minutes=minutes, kind=access.EMBED
        )
        return 201, {"url": url, "expires_at": expires_at.isoformat()}

    return idempotent_response(request, api_key=api_key, perform=perform)
