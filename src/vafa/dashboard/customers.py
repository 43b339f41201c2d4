"""Customer pages (mounted under /dashboard/customers/): search, the customer 360, and its three
actions: adjust points with a reason, send a message from a template, leave a note.

Each action form carries a one-time `form_key` made when the page is drawn; the services use it
as their idempotency key, so a double click or a browser resubmit writes once. After a write
the browser is sent back to the page (post/redirect/get) with a message saying what happened.

Who may do what (see `vafa.core.roles` and the README): the whole team reads; support adjusts
points; marketing sends messages; support and marketing leave notes; the analyst only reads.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from vafa.core.errors import NotFoundError, VafaError
from vafa.core.roles import MARKETER, SUPPORT, has_role, role_required
from vafa.customers.models import Customer
from vafa.dashboard import selectors
from vafa.insights.services import customer_note_add
from vafa.loyalty.services import points_adjust
from vafa.messaging.models import MessageKind
from vafa.messaging.services import message_enqueue

# `source` of the messages sent by hand from the customer page (results group them by source).
MESSAGE_SOURCE = "dashboard"
MAX_POINTS = 1_000_000


def _explain(exc: VafaError) -> str:
    """What went wrong, in the user's language: the services' messages are for developers
    (English, technical), so the page says it by the field the error points at."""
    by_field = {
        "points": _("enter a whole number of points other than zero, up to a million"),
        "reason": _("give a reason for the adjustment"),
        "body": _("write the note first"),
        "template": _("choose a template that exists for this channel"),
        "channel": _("this channel is not set up"),
        "form_key": _("the form has expired: open the page again"),
    }
    return str(by_field.get(exc.field or "", _("the request was refused (%(code)s)")
                            % {"code": exc.code}))


def _int(data: QueryDict, name: str, default: int = 1) -> int:
    raw = data.get(name, "")
    return int(raw) if raw.isdigit() else default


@role_required(MARKETER, SUPPORT)
@require_GET
def customer_list(request: HttpRequest) -> HttpResponse:
    """Search customers by ID, email, phone or name; newest first when nothing is typed."""
    query = request.GET.get("q", "").strip()[:200]
    page = selectors.customer_search(query=query, page=_int(request.GET, "page"))
    context = {
        "shop_name": selectors.shop_name(),
        "active": "customers",
        "query": query,
        "page": page,
        "currency": settings.VAFA_DEFAULT_CURRENCY,
    }
    return render(request, "dashboard/customers/list.html", context)


@role_required(MARKETER, SUPPORT)
@require_GET
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer 360: profile, scores, history, loyalty, consent and the action forms."""
    pages = selectors.CustomerPages(
        **{name: _int(request.GET, name) for name in selectors.CustomerPages.__dataclass_fields__}
    )
    try:
        view = selectors.customer_360(customer_id=pk, now=timezone.now(), pages=pages)
    except NotFoundError:
        raise Http404(_("No such customer.")) from None
    user = request.user
    context: dict[str, Any] = {
        "shop_name": selectors.shop_name(),
        "active": "customers",
        "c": view,
        "currency": settings.VAFA_DEFAULT_CURRENCY,
        "form_key": uuid.uuid4().hex,
        "can_adjust": has_role(user, SUPPORT, write=True),
        "can_send": has_role(user, MARKETER, write=True),
        "can_note": has_role(user, MARKETER, SUPPORT, write=True),
        "templates": selectors.sendable_templates(language=get_language())
        if has_role(user, MARKETER, write=True) else [],
        "query": request.GET,
    }
    return render(request, "dashboard/customers/detail.html", context)


def _customer(pk: int) -> Customer:
    customer = Customer.objects.filter(pk=pk).first()
    if customer is None:
        raise Http404(_("No such customer."))
    return customer


def _form_key(request: HttpRequest) -> str:
    key = request.POST.get("form_key", "").strip()
    if not key or len(key) > 64:
        raise VafaError("missing form key", field="form_key")
    return key


@role_required(SUPPORT, write=True)
@require_POST
def points_adjust_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Add or remove points by hand, with a reason, booked in the ledger under the user's name."""
    customer = _customer(pk)
    try:
        raw = request.POST.get("points", "").strip().replace("+", "")
        try:
            points = int(raw)
        except ValueError:
            raise VafaError("not a whole number", field="points") from None
        if points == 0 or abs(points) > MAX_POINTS:
            raise VafaError("zero or too many points", field="points")
        points_adjust(
            customer=customer, points=points, reason=request.POST.get("reason", ""),
            actor=request.user.get_username(),
            idempotency_key=f"dashboard:{_form_key(request)}", now=timezone.now(),
        )
    except VafaError as exc:
        messages.error(request, _("Points not changed: %(reason)s") % {"reason": _explain(exc)})
    else:
        messages.success(request, _("Points adjusted."))
    return redirect("dashboard:customer", pk=customer.pk)


@role_required(MARKETER, write=True)
@require_POST
def message_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a message to the customer from one of the shop's templates, in their language.

    Always a marketing message: it obeys consent, caps and quiet hours like any other (a
    person on the team must not be able to skip a customer's consent by calling a message
    "transactional"; service messages come from the flows). It is never held out as a control
    (a person chose to send it). The form key makes a resubmit a no-op.
    """
    customer = _customer(pk)
    key, _bar, channel = request.POST.get("template", "").partition("|")
    try:
        if not key or not channel:
            raise VafaError("no template chosen", field="template")
        result = message_enqueue(
            customer=customer, channel=channel, kind=MessageKind.MARKETING, source=MESSAGE_SOURCE,
            step=request.user.get_username()[:50], occurrence=_form_key(request),
            template_key=key, now=timezone.now(), control_percent=0,
        )
    except VafaError as exc:
        messages.error(request, _("Message not sent: %(reason)s") % {"reason": _explain(exc)})
    else:
        if result.created:
            messages.success(request, _("Message queued; its status shows under Messages."))
    return redirect("dashboard:customer", pk=customer.pk)


@role_required(MARKETER, SUPPORT, write=True)
@require_POST
def note_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Leave a note on the customer for the rest of the team."""
    customer = _customer(pk)
    try:
        customer_note_add(
            customer=customer, body=request.POST.get("body", ""),
            author=request.user.get_username(),
            idempotency_key=f"dashboard:{_form_key(request)}", now=timezone.now(),
        )
    except VafaError as exc:
        messages.error(request, _("Note not saved: %(reason)s") % {"reason": _explain(exc)})
    else:
        messages.success(request, _("Note saved."))
    return redirect("dashboard:customer", pk=customer.pk)


urlpatterns: list[URLPattern] = [
    path("", customer_list, name="customers"),
    path("<int:pk>/", customer_detail, name="customer"),
    path("<int:pk>/points/", points_adjust_view, name="customer_points"),
    path("<int:pk>/message/", message_send_view, name="customer_message"),
    path("<int:pk>/notes/", note_add_view, name="customer_note"),
]
