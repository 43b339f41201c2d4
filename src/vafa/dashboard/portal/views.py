"""The member portal's pages: thin views that read the member from the portal session, call one
service and render.

Every page but the entry link and the sign-in form needs a member session
(`access.session_customer`); without one the sign-in form is shown. Forms are protected by
Django's CSRF middleware like any other form of the site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vafa.core.errors import VafaError
from vafa.customers.models import Customer
from vafa.dashboard.portal import access, selectors, services
from vafa.dashboard.portal.models import DataRequestKind
from vafa.dashboard.selectors import shop_name
from vafa.loyalty import services as loyalty_services
from vafa.loyalty.models import Reward
from vafa.messaging.services import push_subscription_save

SERVICE_WORKER = Path(__file__).resolve().parents[1] / "static" / "portal" / "sw.js"
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
PORTAL_ACTOR = "member:portal"
LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}

View = Callable[..., HttpResponse]


def _language(request: HttpRequest, customer: Customer | None) -> str:
    """The language the member chose on this device, else the customer's own, else the
    language Django negotiated from the browser."""
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    if chosen in LANGUAGE_CODES:
        return chosen
    if customer is not None and customer.language in LANGUAGE_CODES:
        return customer.language
    return translation.get_language() or settings.LANGUAGE_CODE


def _sign_in(request: HttpRequest, *, status: int = 200, notice: str = "") -> HttpResponse:
    with translation.override(_language(request, None)):
        return render(
            request,
            "portal/sign_in.html",
            {"notice": notice, "minutes": access.MAGIC_LINK_MINUTES, "shop_name": shop_name()},
            status=status,
        )


def member_required(view: View) -> View:
    """Run `view(request, customer, …)` for a signed-in member; else show the sign-in form."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        customer = access.session_customer(request)
        if customer is None:
            return _sign_in(request, status=401 if request.method == "POST" else 200)
        with translation.override(_language(request, customer)):
            return view(request, customer, *args, **kwargs)

    return wrapper


def _redeem_error(code: str) -> str:
    """A loyalty error as the member should read it."""
    messages = {
        "insufficient_points": _("You do not have enough points for this reward yet."),
        "reward_unavailable": _("This reward cannot be redeemed right now."),
        "out_of_stock": _("This reward is out of stock."),
        "redemption_limit_reached": _("You have already redeemed this reward as often as allowed."),
        "tier_required": _("This reward is for a higher tier."),
        "spend_cap_reached": _("This reward is not available to your account right now."),
    }
    return messages.get(code, _("The reward could not be redeemed. Please try again."))


def _page(
    request: HttpRequest, customer: Customer, *, error: str = "", status: int = 200
) -> HttpResponse:
    language = translation.get_language() or settings.LANGUAGE_CODE
    page = selectors.portal_page(customer=customer, now=timezone.now(), language=language)
    redeemed = None
    redeemed_id = request.GET.get("redeemed", "")
    if redeemed_id.isdigit():
        redeemed = next((r for r in page.redemptions if r.pk == int(redeemed_id)), None)
    response = render(
        request,
        "portal/page.html",
        {
            "page": page,
            "error": error,
            "redeemed": redeemed,
            "shop_name": shop_name(),
            "notice": request.GET.get("notice", ""),
        },
        status=status,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The portal for a signed-in member, else the form that sends a sign-in link."""
    customer = access.session_customer(request)
    if customer is None:
        return _sign_in(request)
    with translation.override(_language(request, customer)):
        return _page(request, customer)


@require_POST
def sign_in(request: HttpRequest) -> HttpResponse:
    """Send a sign-in link to the email address or phone number given; the answer is the same
    whether or not it belongs to a customer. Too many requests from one address get a page
    that asks to wait (429) and send nothing. The address is the connection's own
    (`REMOTE_ADDR`; behind proxies, `VAFA_TRUSTED_PROXIES` makes it the client's)."""
    now = timezone.now()
    if not access.sign_in_request_allowed(client_ip=request.META.get("REMOTE_ADDR", ""),
                                          now=now):
        response = _sign_in(request, status=429, notice="throttled")
        response["Retry-After"] = str(access.SIGN_IN_WINDOW_MINUTES * 60)
        return response
    services.magic_link_send(identifier=request.POST.get("identifier", ""), now=now)
    return _sign_in(request, notice="sent")


@never_cache
@require_GET
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """Open a magic or embed link: start the member session and go to the portal. A link that
    was altered, has expired or was made before the member signed out everywhere gets a page
    that says so and offers a new one."""
    try:
        link = access.read_link_token(token, now=timezone.now())
    except access.LinkError as exc:
        return _sign_in(request, status=410 if exc.reason == "expired" else 404, notice=exc.reason)
    customer = Customer.objects.filter(pk=link.customer_id).first()
    if customer is None:
        return _sign_in(request, status=404, notice="invalid")
    if not access.link_still_valid(link):  # made before the member signed out everywhere
        return _sign_in(request, status=410, notice="expired")
    response = HttpResponseRedirect(reverse("portal:home"))
    access.session_start(response, request=request, link=link)
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to other sites
    return response


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    response = HttpResponseRedirect(reverse("portal:home"))
    access.session_end(response, request=request)
    return response


@require_POST
@member_required
def sign_out_everywhere(request: HttpRequest, customer: Customer) -> HttpResponse:
    """End the member's portal sessions on every device (this one too)."""
    services.member_sign_out_everywhere(customer=customer, now=timezone.now())
    response = _sign_in(request, notice="signed_out_everywhere")
    access.session_end(response, request=request)
    return response


@require_POST
@member_required
def redeem(request: HttpRequest, customer: Customer) -> HttpResponse:
    """Buy a reward with points. The form carries its own idempotency key, so a double click
    or a resubmitted form redeems once and shows the same code."""
    key = request.POST.get("idempotency_key", "")
    reward = None
    reward_id = request.POST.get("reward", "")
    if reward_id.isdigit():
        reward = Reward.objects.filter(pk=int(reward_id)).first()
    if reward is None or not _KEY.match(key):
        return _page(request, customer, error=_redeem_error(""), status=400)
    try:
        redemption = loyalty_services.reward_redeem(
            customer=customer,
            reward=reward,
            idempotency_key=f"portal:{key}",
            now=timezone.now(),
            actor=PORTAL_ACTOR,
        )
    except VafaError as exc:
        return _page(request, customer, error=_redeem_error(exc.code), status=409)
    return HttpResponseRedirect(f"{reverse('portal:home')}?redeemed={redemption.pk}#rewards")


@require_POST
@member_required
def referral(request: HttpRequest, customer: Customer) -> HttpResponse:
    """Create the member's invite code (the first time) and show the share links."""
    loyalty_services.referral_code_get(customer=customer, now=timezone.now())
    return HttpResponseRedirect(f"{reverse('portal:home')}#referral")


@require_POST
@member_required
def leaderboard(request: HttpRequest, customer: Customer) -> HttpResponse:
    """Join the leaderboard under a random pseudonym (`join=1`), or leave it."""
    if request.POST.get("join") == "1":
        loyalty_services.leaderboard_join(customer=customer, now=timezone.now())
    else:
        loyalty_services.leaderboard_leave(customer=customer)
    return HttpResponseRedirect(f"{reverse('portal:home')}#leaderboard")


@require_POST
@member_required
def push_subscribe(request: HttpRequest, customer: Customer) -> HttpResponse:
    """Store the browser's `PushSubscription.toJSON()`: the member's opt-in to web push."""
    try:
        body = json.loads(request.body or b"{}")
        keys = body.get("keys") or {}
        push_subscription_save(
            customer=customer,
            endpoint=str(body.get("endpoint", "")),
            p256dh=str(keys.get("p256dh", "")),
            auth=str(keys.get("auth", "")),
            now=timezone.now(),
        )
    except (ValueError, AttributeError, VafaError) as exc:
        return JsonResponse({"error": {"code": "invalid", "message": str(exc)}}, status=422)
    return JsonResponse({"ok": True}, status=201)


@require_POST
@member_required
def export(request: HttpRequest, customer: Customer) -> HttpResponse:
    """Download everything the shop holds about the member as JSON (recorded for staff)."""
    now = timezone.now()
    services.data_request_create(customer=customer, kind=DataRequestKind.EXPORT, now=now)
    data = selectors.member_data_export(customer=customer, now=now)
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="my-data-{now:%Y%m%d}.json"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@member_required
def delete_request(request: HttpRequest, customer: Customer) -> HttpResponse:
    """Record the member's request to delete their data; staff handle it (nothing is deleted
    automatically: orders may have to be kept by law)."""
    services.data_request_create(
        customer=customer,
        kind=DataRequestKind.DELETE,
        now=timezone.now(),
        note=request.POST.get("note", ""),
    )
    return HttpResponseRedirect(f"{reverse('portal:home')}?notice=delete#data")


@cache
def _service_worker() -> bytes:
    return SERVICE_WORKER.read_bytes()


@require_http_methods(["GET", "HEAD"])
def service_worker(request: HttpRequest) -> HttpResponse:
    """The push service worker, served from /p/ so that its scope covers the whole portal."""
    response = HttpResponse(_service_worker(), content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = reverse("portal:home")
    response["Cache-Control"] = "no-cache"
    return response
