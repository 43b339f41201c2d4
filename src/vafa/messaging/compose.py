"""Turn a template and a customer into the message that will be sent: the template context, the
rendered parts, and for email the full HTML document (direction, language, fonts, footer with
the unsubscribe link, tracked links, CSS inlined) and its plain-text part.

Rendering happens when a message is enqueued, so a preview shows exactly what will be sent and a
template error stops the message before it exists.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import css_inline
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils import translation
from django.utils.translation import gettext

from vafa.customers.models import PURCHASE_STATUSES, Channel, Customer, Order
from vafa.loyalty.models import Member
from vafa.loyalty.selectors import member_balance
from vafa.messaging import links, tokens
from vafa.messaging.errors import TemplateError
from vafa.messaging.models import MessageKind, MessageTemplate
from vafa.messaging.policy import customer_zone
from vafa.messaging.selectors import CustomerLike
from vafa.messaging.templating import Money, plain, plain_list, render_string

RTL_LANGUAGES = frozenset({"fa", "ar"})
FONT_STACKS = {
    "rtl": "Vazirmatn, Vazir, Tahoma, 'Segoe UI', 'Noto Naskh Arabic', Arial, sans-serif",
    "ltr": "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
}
# Iranian operators require `لغو۱۱` on advertising SMS; it is a keyword, not prose, so it is
# not left to translators. The inbound webhook recognises each of these.
SMS_OPT_OUT_HINT = {"fa": "لغو۱۱", "ar": "للإلغاء: إلغاء", "en": "STOP to opt out"}
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
_HREF = re.compile(r"""href=(["'])(https?://[^"']+)\1""", re.IGNORECASE)


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def message_language(customer: CustomerLike) -> str:
    """The customer's language if the shop speaks it, else the shop's language."""
    known = {code for code, _ in settings.LANGUAGES}
    language = (customer.language or "").strip().lower()[:2]
    return language if language in known else settings.LANGUAGE_CODE


def order_summary(order: Order, zone: Any, *, detail: bool = False) -> dict[str, Any]:
    """An order as templates see it: `last_order` of every message (id, date, total, lines),
    and with `detail` the order a flow is about (status, fulfilment, shipping, discount, each
    line's category and the order's categories). `order.lines` must be prefetched with their
    products (and, with `detail`, the products' categories)."""
    lines = []
    for line in sorted(order.lines.all(), key=lambda line: line.line_no):
        row: dict[str, Any] = {
            "product": line.product.name,
            "product_id": line.product.external_id,
            "quantity": line.quantity,
            "unit_price": Money(line.unit_price, order.currency),
            "total": Money(line.unit_price * line.quantity, order.currency),
        }
        if detail:
            row["category"] = line.product.category.name if line.product.category else ""
        lines.append(row)
    summary: dict[str, Any] = {
        "id": order.external_id,
        "placed_at": order.placed_at.astimezone(zone).date(),
        "total": Money(order.total, order.currency),
        "currency": order.currency,
        "lines": lines,
    }
    if detail:
        summary.update(
            status=order.status,
            fulfillment=order.fulfillment_status,
            shipping=Money(order.shipping, order.currency),
            discount=Money(order.discount, order.currency),
            categories=sorted({line["category"] for line in lines if line["category"]}),
        )
    return summary


def _last_order(customer: Customer, zone: Any) -> dict[str, Any] | None:
    order = (
        Order.objects.filter(customer=customer, status__in=PURCHASE_STATUSES)
        .order_by("-placed_at", "-id")
        .prefetch_related("lines__product")
        .first()
    )
    return None if order is None else order_summary(order, zone)


def common_context(
    customer: CustomerLike, *, language: str, zone: tzinfo, now: datetime, site_url: str
) -> dict[str, Any]:
    """The entries of a template context that need nothing but the customer and the moment:
    who they are, the shop, the language and its direction, today in their time zone. Shared
    by `message_context` and the campaign batch path, so both give templates the same names."""
    return {
        "customer": {
            "name": customer.full_name or customer.first_name,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "city": customer.city,
        },
        "shop": {"url": site_url},
        "lang": language,
        "dir": "rtl" if language in RTL_LANGUAGES else "ltr",
        "today": now.astimezone(zone).date(),
    }


def message_context(
    *,
    customer: Customer,
    channel: str,
    now: datetime,
    site_url: str,
    language: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a template can use, in `language` (default: the customer's). `extra` may add
    `recommended_products` (a list of dicts), `social_proof` (a sentence such as "1,240
    customers bought this this month") and any other plain values; they are copied into plain
    data first."""
    language = language or message_language(customer)
    zone = customer_zone(customer.timezone)
    member = Member.objects.select_related("tier").filter(customer=customer).first()
    points = member_balance(customer=customer, now=now).available if member else 0
    extra = dict(extra or {})
    context = common_context(customer, language=language, zone=zone, now=now, site_url=site_url)
    context.update({
        "last_order": _last_order(customer, zone),
        "points": points,
        "tier": member.tier.name if member and member.tier else "",
        "recommended_products": plain_list(extra.pop("recommended_products", None)),
        "social_proof": str(extra.pop("social_proof", "") or ""),
        "unsubscribe_url": links.unsubscribe_url(
            site_url=site_url, customer_id=customer.pk, channel=channel
        ),
        "preferences_url": links.preferences_url(
            site_url=site_url, customer_id=customer.pk, channel=channel
        ),
    })
    for key, value in extra.items():
        context[key] = plain(value)
    return context


class _TextFromHtml(HTMLParser):
    """A readable plain-text version of an HTML body: paragraphs and line breaks kept, links
    written as `text (url)`, scripts and styles dropped."""

    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "head", "title"}:
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "head", "title"}:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.href:
            self.parts.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextFromHtml()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass(frozen=True)
class TrackingLinks:
    """Builds the click and open URLs of messages to one site: the URL halves around the token
    are found once (`links.token_halves` reads the URL configuration through thread-locals,
    which a campaign paid three times per message). Gives exactly `links.click_url` and
    `links.open_url`."""

    site_url: str
    click: tuple[str, str]
    opened: tuple[str, str]

    @classmethod
    def for_site(cls, site_url: str) -> TrackingLinks:
        def halves(name: str) -> tuple[str, str]:
            before, after = links.token_halves(name)
            return links.absolute(site_url, before), after

        return cls(site_url, halves("messaging:click"), halves("messaging:open"))

    def click_url(self, *, dedupe_key: str, url: str) -> str:
        before, after = self.click
        return f"{before}{tokens.click_token(dedupe_key=dedupe_key, url=url)}{after}"

    def open_url(self, *, dedupe_key: str) -> str:
        before, after = self.opened
        return f"{before}{tokens.open_token(dedupe_key=dedupe_key)}{after}"


def _track_links(
    markup: str, *, tracking: TrackingLinks, dedupe_key: str, keep: set[str]
) -> str:
    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match.group(2))
        if url in keep:
            return match.group(0)
        tracked = tracking.click_url(dedupe_key=dedupe_key, url=url)
        return f'href="{html.escape(tracked)}"'

    return _HREF.sub(replace, markup)


def email_document(*, body: str, language: str, footer: str = "", pixel: str = "") -> str:
    """The whole HTML email around a merchant's fragment: language and direction on `html` and
    `body`, a font stack with Vazirmatn first for fa/ar, and CSS inlined (mail clients drop
    `<style>`); media queries stay in a style block."""
    rtl = language in RTL_LANGUAGES
    direction = "rtl" if rtl else "ltr"
    fonts = FONT_STACKS[direction]
    document = f"""<!DOCTYPE html>
<html lang="{language}" dir="{direction}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ margin: 0; padding: 0; background: #f5f5f4; font-family: {fonts}; color: #1c1917;
  direction: {direction}; text-align: {"right" if rtl else "left"}; line-height: 1.7; }}
.container {{ max-width: 600px; margin: 0 auto; padding: 24px 16px; background: #ffffff; }}
.footer {{ margin-top: 32px; font-size: 12px; color: #78716c; }}
.footer a {{ color: #57534e; }}
a {{ color: #0f766e; }}
@media (max-width: 620px) {{ .container {{ padding: 16px 12px; }} }}
</style>
</head>
<body dir="{direction}">
<div class="container" dir="{direction}">
{body}
{footer}
</div>
{pixel}
</body>
</html>"""
    try:
        return str(_INLINER.inline(document))
    except (css_inline.InlineError, ValueError) as exc:
        raise TemplateError(f"the CSS cannot be inlined: {exc}", field="body_html") from None


@lru_cache(maxsize=32)
def footer_labels(language: str) -> tuple[str, str]:
    """The footer's "Unsubscribe" and "Email preferences" in `language`, translated once per
    language (switching the active language per message cost more than a tracked link)."""
    with translation.override(language):
        return gettext("Unsubscribe"), gettext("Email preferences")


@receiver(setting_changed)
def _forget_labels(*, setting: str, **kwargs: Any) -> None:
    """Translate again when a test changes the languages or where their catalogs are."""
    if setting in {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "INSTALLED_APPS"}:
        footer_labels.cache_clear()


def render_message(
    *,
    template: MessageTemplate,
    context: dict[str, Any],
    kind: str,
    dedupe_key: str,
    site_url: str,
    track: bool = False,
    tracking: TrackingLinks | None = None,
) -> RenderedMessage:
    """Render `template` for one customer; raises `TemplateError` and renders nothing else when
    any part fails. Marketing emails get a visible unsubscribe link in both parts and marketing
    SMS the operators' opt-out keyword. A batch passes its `tracking` links, built once."""
    language = str(context.get("lang") or template.language)
    subject = render_string(template.subject, context, language=language, field="subject")
    subject = " ".join(subject.split())
    text = render_string(template.body_text, context, language=language, field="body_text")
    if template.channel == Channel.EMAIL:
        fragment = render_string(
            template.body_html, context, language=language, html=True, field="body_html"
        )
        if not text.strip() and fragment:
            text = html_to_text(fragment)
        footer = pixel = ""
        unsubscribe, preferences = context["unsubscribe_url"], context["preferences_url"]
        if kind == MessageKind.MARKETING:
            unsubscribe_label, preferences_label = footer_labels(language)
            footer = (
                f'<p class="footer"><a href="{html.escape(unsubscribe)}">'
                f"{html.escape(unsubscribe_label)}</a> · "
                f'<a href="{html.escape(preferences)}">{html.escape(preferences_label)}</a></p>'
            )
            text = (
                f"{text.rstrip()}\n\n--\n{unsubscribe_label}: {unsubscribe}\n"
                f"{preferences_label}: {preferences}\n"
            )
        if track and fragment:
            if tracking is None or tracking.site_url != site_url:
                tracking = TrackingLinks.for_site(site_url)
            fragment = _track_links(
                fragment, tracking=tracking, dedupe_key=dedupe_key,
                keep={unsubscribe, preferences},
            )
            pixel_url = tracking.open_url(dedupe_key=dedupe_key)
            pixel = f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="">'
        body_html = (
            email_document(body=fragment, language=language, footer=footer, pixel=pixel)
            if fragment
            else ""
        )
        return RenderedMessage(subject=subject, text=text, html=body_html)
    text = text.strip()
    if template.channel == Channel.SMS and kind == MessageKind.MARKETING:
        hint = SMS_OPT_OUT_HINT.get(language, SMS_OPT_OUT_HINT["en"])
        text = f"{text}\n{hint}"
    return RenderedMessage(subject=subject, text=text, html="")


def sample_context(*, language: str, site_url: str = "https://shop.example") -> dict[str, Any]:
    """A made-up customer with every variable filled, to check a template before it is saved
    (the variables flows add, such as `order` or `tier_name`, included)."""
    from vafa.messaging.flows.selectors import flow_sample_context  # flows build on messaging

    today = datetime.now(customer_zone("")).date()
    return {
        **flow_sample_context(today=today),
        "customer": {"name": "Sara Ahmadi", "first_name": "Sara", "last_name": "Ahmadi", "city": ""},
        "last_order": {
            "id": "1001",
            "placed_at": today,
            "total": Money(Decimal(1_250_000), "IRT"),
            "currency": "IRT",
            "lines": [
                {
                    "product": "Tea", "product_id": "P1", "quantity": 2,
                    "unit_price": Money(Decimal(625_000), "IRT"),
                    "total": Money(Decimal(1_250_000), "IRT"),
                }
            ],
        },
        "points": 1240,
        "tier": "Gold",
        "recommended_products": [{"name": "Saffron", "url": f"{site_url}/p/2", "price": 90_000}],
        "social_proof": "1,240 customers bought this this month",
        "unsubscribe_url": f"{site_url}/m/unsubscribe/sample/",
        "preferences_url": f"{site_url}/m/preferences/sample/",
        "shop": {"url": site_url},
        "lang": language,
        "dir": "rtl" if language in RTL_LANGUAGES else "ltr",
        "today": today,
    }


def template_check(template: MessageTemplate) -> RenderedMessage:
    """Render `template` for the sample customer; raises `TemplateError` if any part fails."""
    return render_message(
        template=template, context=sample_context(language=template.language),
        kind=MessageKind.MARKETING, dedupe_key="check", site_url="https://shop.example",
    )
