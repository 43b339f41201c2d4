"""The pages and webhooks of messaging: unsubscribe and preference centre (reached by a signed
link, no login, no cookies), Telegram and inbound-SMS webhooks, push subscriptions, and the
click and open trackers. Each view parses, calls one service and renders.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from datetime import datetime
from typing import Any

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vafa.core.errors import ValidationError
from vafa.core.timeutil import format_date
from vafa.customers.models import Channel, Consent, Customer
from vafa.feedback.services import exit_survey_link
from vafa.messaging import services, tokens
from vafa.messaging.compose import message_language
from vafa.messaging.conf import load_env
from vafa.messaging.errors import InvalidToken
from vafa.messaging.models import Frequency, Preference, Topic
from vafa.messaging.policy import customer_zone
from vafa.messaging.selectors import send_state

logger = logging.getLogger("vafa.messaging")

# A transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "messaging/invalid_link.html", status=404)


def _page_context(
    customer: Customer, channel: str, token: str, *, notice: str = ""
) -> dict[str, Any]:
    """What the preference page shows: the channels the customer can be reached on, with
    their consent, the topics, the frequency and the pause."""
    now = timezone.now()
    state = send_state([customer], now=now)
    consents = dict(
        Consent.objects.filter(customer=customer).values_list("channel", "granted")
    )
    channels = [
        {"value": value, "label": label, "granted": consents.get(value, False)}
        for value, label in Channel.choices
        if state.address(customer, value) or value == channel
    ]
    preference = Preference.objects.filter(customer=customer).first()
    topics_off = set(preference.topics_off if preference else [])
    paused_until = preference.paused_until if preference else None
    paused = bool(paused_until and paused_until > now)
    return {
        "customer": customer,
        "token": token,
        "link_channel": channel,
        "channels": channels,
        "topics": [
            {"value": value, "label": label, "on": value not in topics_off}
            for value, label in Topic.choices
        ],
        "frequencies": Frequency.choices,
        "frequency": preference.frequency if preference else Frequency.ALL,
        "paused": paused,
        "paused_until": format_date(
            paused_until, message_language(customer), zone=customer_zone(customer.timezone)
        ) if paused and paused_until else "",
        "notice": notice,
    }


def _exit_survey_url(customer: Customer, now: datetime) -> str | None:
    """The "why are you leaving?" link for a person who unsubscribed on our page, or None.

    Only a person on the page is asked here: creating the invitation for a mail client's
    one-click POST would use up the customer's one exit invitation for the `unsubscribe`
    trigger on a page nobody sees (the feedback app asks those customers later by message).
    The unsubscribe is already saved, so a failure here is logged and the page still shows.
    """
    try:
        return exit_survey_link(customer=customer, trigger="unsubscribe", channel="web", now=now)
    except Exception:
        logger.exception("exit survey link for customer %s failed", customer.pk)
        return None


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058 one-click unsubscribe. A POST (form-encoded or multipart
    `List-Unsubscribe=One-Click`, no cookies, no CSRF token) unsubscribes and answers 200 with
    no redirect. A GET only shows the preference page: mail scanners follow links."""
    try:
        customer, channel = services.recipient_from_token(token)
    except InvalidToken:
        return _invalid(request)
    with translation.override(message_language(customer)):
        if request.method == "POST":
            # Our own page's button says so; a mail client's RFC 8058 POST carries only
            # `List-Unsubscribe=One-Click`, and nobody reads the page it gets back.
            from_page = request.POST.get("from_page") == "1"
            now = timezone.now()
            services.recipient_unsubscribe(
                token=token, source="unsubscribe-page" if from_page else "one-click", now=now,
            )
            return render(
                request, "messaging/unsubscribed.html",
                {
                    "customer": customer, "token": token, "channel": Channel(channel).label,
                    "exit_survey_url": _exit_survey_url(customer, now) if from_page else None,
                },
            )
        return render(
            request, "messaging/preferences.html",
            _page_context(customer, channel, token, notice="confirm"),
        )


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """The preference centre. The signed link is the customer's key, so the form needs no
    login and no CSRF cookie (a forged request would have to know the token)."""
    try:
        customer, channel = services.recipient_from_token(token)
    except InvalidToken:
        return _invalid(request)
    with translation.override(message_language(customer)):
        notice = ""
        if request.method == "POST":
            shown = {c["value"] for c in _page_context(customer, channel, token)["channels"]}
            services.preferences_update(
                customer=customer,
                now=timezone.now(),
                source="preference-centre",
                channels={c: request.POST.get(f"channel_{c}") == "on" for c in sorted(shown)},
                topics_off=[t for t in Topic.values if request.POST.get(f"topic_{t}") != "on"],
                frequency=request.POST.get("frequency") or Frequency.ALL,
                pause=request.POST.get("pause") == "on",
            )
            notice = "saved"
        return render(
            request, "messaging/preferences.html",
            _page_context(customer, channel, token, notice=notice),
        )


@csrf_exempt
@require_POST
def push_subscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Store the browser's `PushSubscription.toJSON()` for the link's customer."""
    try:
        customer, _ = services.recipient_from_token(token)
        body = json.loads(request.body or b"{}")
        keys = body.get("keys") or {}
        services.push_subscription_save(
            customer=customer, endpoint=str(body.get("endpoint", "")),
            p256dh=str(keys.get("p256dh", "")), auth=str(keys.get("auth", "")),
            now=timezone.now(),
        )
    except InvalidToken:
        return JsonResponse({"error": {"code": "invalid_token", "message": "invalid link"}}, status=404)
    except (ValueError, AttributeError, ValidationError) as exc:
        return JsonResponse({"error": {"code": "invalid", "message": str(exc)}}, status=422)
    return JsonResponse({"ok": True}, status=201)


@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click and go where the signed link says (and nowhere else)."""
    try:
        dedupe_key, url = tokens.read_click_token(token)
    except InvalidToken:
        raise Http404("invalid link") from None
    if not url.startswith(("https://", "http://")):
        raise Http404("invalid link")
    services.message_clicked(dedupe_key=dedupe_key, now=timezone.now())
    return HttpResponseRedirect(url)


@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    with contextlib.suppress(InvalidToken):  # a pixel never shows an error
        services.message_opened(dedupe_key=tokens.read_open_token(token), now=timezone.now())
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


def _secret_ok(given: str, expected: str) -> bool:
    return bool(expected) and constant_time_compare(given, expected)


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest, secret: str) -> HttpResponse:
    """Updates from the Telegram bot: `/start TOKEN` links a chat, `/stop` opts out, and a
    `my_chat_member` update with status `kicked` (the user blocked the bot) suppresses the chat.
    A link is confirmed by answering the webhook with a `sendMessage` call."""
    env = load_env()
    header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
    if not _secret_ok(secret, env.telegram_webhook_secret) or (
        header is not None and not _secret_ok(header, env.telegram_webhook_secret)
    ):
        raise Http404()
    try:
        update = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({})
    now = timezone.now()
    member_update = update.get("my_chat_member") or {}
    if member_update:
        status = (member_update.get("new_chat_member") or {}).get("status")
        chat_id = str((member_update.get("chat") or {}).get("id", ""))
        if status == "kicked" and chat_id:
            services.telegram_chat_blocked(chat_id=chat_id, now=now)
        return JsonResponse({})
    message = update.get("message") or {}
    text = str(message.get("text") or "").strip()
    chat_id = str((message.get("chat") or {}).get("id", ""))
    if not chat_id:
        return JsonResponse({})
    command, _, argument = text.partition(" ")
    command = command.split("@")[0]
    if command == "/start" and argument.strip():
        link = services.telegram_link_complete(
            token=argument.strip(), chat_id=chat_id, now=now
        )
        if link is not None:
            with translation.override(message_language(link.customer)):
                reply = gettext("Your account is linked. You will get your messages here.")
            return JsonResponse({"method": "sendMessage", "chat_id": chat_id, "text": reply})
    elif command == "/stop":
        services.telegram_chat_opt_out(chat_id=chat_id, now=now)
    return JsonResponse({})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def sms_inbound(request: HttpRequest, secret: str) -> HttpResponse:
    """Messages customers send to the shop's number (Kavenegar posts `from`/`message`, Twilio
    `From`/`Body`): opt-out keywords in English, Persian and Arabic unsubscribe the number."""
    env = load_env()
    if not _secret_ok(secret, env.sms_inbound_secret):
        raise Http404()
    data = request.POST if request.method == "POST" else request.GET
    sender = data.get("from") or data.get("From") or data.get("sender") or ""
    text = data.get("message") or data.get("Body") or data.get("text") or ""
    services.sms_inbound_record(sender=sender, text=text, now=timezone.now())
    if "From" in data:  # Twilio expects TwiML; an empty response sends no reply
        return HttpResponse(
            '<?xml version="1.0" encoding="UTF-8"?><Response></Response>',
            content_type="text/xml",
        )
    return HttpResponse("OK", content_type="text/plain")
