"""WooCommerce and Shopify webhooks: verify the HMAC signature, then apply the order or customer
through the same mappers and rules as an import of that platform's export.

- `POST /api/v1/webhooks/woocommerce`: `X-WC-Webhook-Signature` is base64(HMAC-SHA256(secret,
  raw body)); the topic (`order.created`, `order.updated`, `customer.created`,
  `customer.updated`) comes in `X-WC-Webhook-Topic`. WooCommerce pings a new webhook with the
  unsigned form body `webhook_id=<n>` and refuses to save it unless the ping gets a 2xx: the
  ping writes nothing and is answered 200.
- `POST /api/v1/webhooks/shopify`: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(secret, raw
  body)); topic in `X-Shopify-Topic` (`orders/create`, `orders/updated`, `customers/create`,
  `customers/update`, and the other `orders/*` updates). Shopify delivers at least once;
  deliveries are de-duplicated by `X-Shopify-Webhook-Id` (the first answer is replayed), so a
  late retry of an old delivery cannot overwrite newer data.

A bad or missing signature is a 401 and nothing is read further. A platform whose secret
setting (`VAFA_WOOCOMMERCE_SECRET`, `VAFA_SHOPIFY_SECRET`) is empty answers 503
`webhook_not_configured`: the sender retries later, and nothing unsigned is ever accepted.
Topics we do not use (deletions, products…) are acknowledged with 200 and ignored, so the
platform does not disable the webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Router

from vafa.core.errors import AuthenticationError, VafaError
from vafa.core.idempotency import idempotent_response
from vafa.core.models import ApiKey, hash_key
from vafa.customers import services

router = Router(tags=["webhooks"])

WOOCOMMERCE_TOPICS = {
    "order.created": "orders", "order.updated": "orders", "order.restored": "orders",
    "customer.created": "customers", "customer.updated": "customers",
}
SHOPIFY_TOPICS = {
    "orders/create": "orders", "orders/updated": "orders", "orders/paid": "orders",
    "orders/cancelled": "orders", "orders/fulfilled": "orders",
    "orders/partially_fulfilled": "orders",
    "customers/create": "customers", "customers/update": "customers",
}
_PING = re.compile(rb"webhook_id=\d+")


class WebhookNotConfigured(VafaError):
    code = "webhook_not_configured"
    status = 503


def signature_valid(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` is base64(HMAC-SHA256(secret, body)), compared in constant time."""
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def _verify(request: HttpRequest, secret: str, header: str, platform: str) -> None:
    if not secret:
        raise WebhookNotConfigured(
            f"{platform} webhooks are not configured on this server (set the secret setting)"
        )
    if not signature_valid(secret, request.body, request.headers.get(header)):
        raise AuthenticationError(f"missing or bad {header} signature", field=header)


def _body_text(request: HttpRequest) -> str:
    try:
        return request.body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise VafaError("the body is not UTF-8 JSON") from None


def _apply(platform: str, entity: str, body: str) -> tuple[int, dict[str, Any]]:
    result = services.platform_object_apply(platform=platform, entity=entity, body=body)
    return (201 if result.created else 200), {
        "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
    }


def _system_key(platform: str) -> ApiKey:
    """The (revoked, unusable) key under which a platform's deliveries are de-duplicated."""
    api_key, _ = ApiKey.objects.get_or_create(
        name=f"webhooks:{platform} (system; cannot authenticate)",
        prefix="system",
        defaults={"key_hash": hash_key(secrets.token_urlsafe(32)), "revoked_at": timezone.now()},
    )
    return api_key


@router.post("/woocommerce", auth=None, summary="WooCommerce order/customer webhook")
def woocommerce(request: HttpRequest) -> HttpResponse:
    topic = request.headers.get("X-WC-Webhook-Topic", "")
    if not topic and _PING.fullmatch(request.body.strip()):
        return JsonResponse({"ok": True, "ping": True})
    _verify(request, settings.VAFA_WOOCOMMERCE_SECRET, "X-WC-Webhook-Signature", "WooCommerce")
    entity = WOOCOMMERCE_TOPICS.get(topic)
    if entity is None:
        return JsonResponse({"ok": True, "ignored": topic or "no topic"})
    status, body = _apply("woocommerce", entity, _body_text(request))
    return JsonResponse(body, status=status)


@router.post("/shopify", auth=None, summary="Shopify order/customer webhook")
def shopify(request: HttpRequest) -> HttpResponse:
    _verify(request, settings.VAFA_SHOPIFY_SECRET, "X-Shopify-Hmac-Sha256", "Shopify")
    topic = request.headers.get("X-Shopify-Topic", "")
    entity = SHOPIFY_TOPICS.get(topic)
    if entity is None:
        return JsonResponse({"ok": True, "ignored": topic or "no topic"})
    text = _body_text(request)
    delivery = request.headers.get("X-Shopify-Webhook-Id", "").strip()
    if not delivery:
        status, body = _apply("shopify", entity, text)
        return JsonResponse(body, status=status)
    return idempotent_response(
        request, api_key=_system_key("shopify"), key=f"shopify:{delivery}"[:255],
        perform=lambda: _apply("shopify", entity, text),
    )
