"""Segment builder pages (mounted under /dashboard/segments/): list the saved segments, build one
from filters with a live count, save, edit and delete.

The page is one plain HTML form with one slot per filter (`rfm_segment`, `clv__min`,
`last_purchase_date__from`, `city__exclude`, …). The same form fields are sent to the count
endpoint as a query string, so the form is turned into a segment definition in one place
(`form_definition`) and checked by `vafa.insights.segments.validate_definition`.

Marketers (and the owner) build and save segments; an analyst sees them read-only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from vafa.core.errors import ConflictError, NotFoundError, ValidationError
from vafa.core.roles import MARKETER, has_role, role_required
from vafa.core.timeutil import format_date
from vafa.dashboard import selectors
from vafa.dashboard.overview import localizer
from vafa.insights import segments as seg
from vafa.insights.models import Segment

_SUFFIXES = {"values": ("",), "range": ("min", "max"), "dates": ("from", "to"), "flag": ("",)}


def _input_name(name: str, part: str) -> str:
    return f"{name}__{part}" if part else name


def form_definition(data: QueryDict) -> tuple[dict[str, Any], list[str]]:
    """The segment definition the builder form describes, and for each of its rules the name
    of the filter it came from (to point a validation error at the right input)."""
    rules: list[dict[str, Any]] = []
    origins: list[str] = []
    for name, spec in seg.FIELDS.items():
        rule: dict[str, Any] = {"field": name}
        if spec.kind == "values":
            values = [value for value in data.getlist(name) if value != "" or spec.choices]
            if not values:
                continue
            rule["values"] = values
        elif spec.kind == "flag":
            choice = data.get(name, "")
            if choice not in ("yes", "no"):
                continue
            rule["value"] = choice == "yes"
        else:
            bounds = {part: data.get(_input_name(name, part), "").strip()
                      for part in _SUFFIXES[spec.kind]}
            if not any(bounds.values()):
                continue
            rule.update({part: value for part, value in bounds.items() if value})
        if data.get(_input_name(name, "exclude")):
            rule["exclude"] = True
        rules.append(rule)
        origins.append(name)
    return {"match": "any" if data.get("match") == "any" else "all", "rules": rules}, origins


def _error_input(error: ValidationError, origins: list[str]) -> str:
    """The form input a `ValidationError` from `validate_definition` is about."""
    parts = (error.field or "").split(".")
    if len(parts) >= 2 and parts[0] == "rules" and parts[1].isdigit() and int(parts[1]) < len(
            origins):
        name = origins[int(parts[1])]
        part = parts[2] if len(parts) > 2 and parts[2] in ("min", "max", "from", "to") else ""
        return _input_name(name, part)
    return error.field or ""


@dataclass
class FilterSlot:
    """One filter of the builder form with its current value, ready for the template."""

    name: str
    kind: str
    label: str
    unit: str
    options: list[tuple[str, str, bool]] = field(default_factory=list)
    low: str = ""
    high: str = ""
    flag: str = ""
    exclude: bool = False
    many: bool = False
    jalali: bool = False  # a date filter shown and typed in the Solar Hijri calendar (fa)


def _slots(definition: Mapping[str, Any]) -> list[FilterSlot]:
    """The form's filters, filled from a flat definition (one rule per filter)."""
    current = {rule["field"]: rule for rule in definition.get("rules", []) if "field" in rule}
    options = seg.builder_options()
    # Persian merchants read and type dates in the Solar Hijri calendar, which the browser's
    # date picker does not offer: their date filters are text fields holding Jalali dates.
    jalali = (get_language() or "").startswith("fa")
    slots: list[FilterSlot] = []
    for name, spec in seg.FIELDS.items():
        rule = current.get(name, {})
        slot = FilterSlot(name=name, kind=spec.kind, label=str(spec.label),
                          unit=str(spec.unit or ""), exclude=bool(rule.get("exclude")))
        if spec.kind == "values":
            chosen = {str(value) for value in rule.get("values", [])}
            pairs = ([(key, str(label)) for key, label in spec.choices] if spec.choices
                     else options.get(name, []))
            known = {key for key, _label in pairs}
            pairs += [(value, value) for value in sorted(chosen - known)]
            slot.options = [(key, label or _("(none)"), key in chosen) for key, label in pairs]
            slot.many = not spec.choices
        elif spec.kind == "flag":
            slot.flag = "" if not rule else ("yes" if rule.get("value") else "no")
        else:
            low_key, high_key = _SUFFIXES[spec.kind]
            slot.low, slot.high = str(rule.get(low_key, "")), str(rule.get(high_key, ""))
            if spec.kind == "dates" and jalali:
                slot.jalali = True
                slot.low, slot.high = _jalali(slot.low), _jalali(slot.high)
        slots.append(slot)
    return slots


def _jalali(value: str) -> str:
    """A stored ISO date as a Persian merchant types it (`۱۴۰۵/۰۱/۰۱`); anything else (a value
    being corrected) as it was written. Validation reads both calendars back."""
    try:
        return format_date(dt.date.fromisoformat(value), "fa")
    except ValueError:
        return value


def _editable(definition: Mapping[str, Any]) -> bool:
    """Whether the flat form can show `definition`: no nested groups, each filter once."""
    rules = definition.get("rules", [])
    names = [rule.get("field") for rule in rules]
    return all("field" in rule for rule in rules) and len(names) == len(set(names))


def _page(request: HttpRequest, *, segment: Segment | None, definition: Mapping[str, Any],
          form: Mapping[str, str], error: ValidationError | None = None,
          error_input: str = "", status: int = 200) -> HttpResponse:
    count = None
    if error is None:
        try:
            count = seg.segment_count(definition)
        except ValidationError:
            count = None
    mark = seg.stats_mark()
    context = {
        "shop_name": selectors.shop_name(),
        "active": "segments",
        "segments": Segment.objects.all(),
        "segment": segment,
        "form": form,
        "match": definition.get("match", "all"),
        "slots": _slots(definition),
        "editable": _editable(definition),
        "count": count,
        "totals_as_of": mark.at if mark else None,
        "error": error,
        "error_input": error_input,
        "error_filter": error_input.split("__")[0],
        "can_edit": has_role(request.user, MARKETER, write=True),
    }
    return render(request, "dashboard/segments/builder.html", context, status=status)


@role_required(MARKETER)
@require_GET
def segment_list(request: HttpRequest) -> HttpResponse:
    """Saved segments and an empty builder."""
    return _page(request, segment=None, definition={}, form={})


@role_required(MARKETER)
@require_GET
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The builder filled with a saved segment's filters."""
    segment = get_object_or_404(Segment, pk=pk)
    return _page(request, segment=segment, definition=segment.definition,
                 form={"name": segment.name, "description": segment.description})


@role_required(MARKETER)
@require_GET
def segment_count_view(request: HttpRequest) -> JsonResponse:
    """The live count for the builder form's current filters, as JSON."""
    definition, origins = form_definition(request.GET)
    try:
        tally = seg.segment_tally(definition)
    except ValidationError as exc:
        body = exc.as_dict()
        body["input"] = _error_input(exc, origins)
        return JsonResponse({"error": body}, status=exc.status)
    as_of = tally.totals_as_of
    return JsonResponse({"count": tally.count,
                         "display": localizer(get_language()).number(tally.count),
                         "totals_as_of": as_of.isoformat() if as_of else None})


@role_required(MARKETER, write=True)
@require_POST
def segment_save_view(request: HttpRequest) -> HttpResponse:
    """Create or update a segment from the builder form."""
    definition, origins = form_definition(request.POST)
    raw_id = request.POST.get("segment_id", "")
    segment = get_object_or_404(Segment, pk=int(raw_id)) if raw_id.isdigit() else None
    form = {"name": request.POST.get("name", ""),
            "description": request.POST.get("description", "")}
    try:
        saved = seg.segment_save(
            name=form["name"], description=form["description"], definition=definition,
            now=timezone.now(), created_by=request.user.get_username(),
            segment_id=segment.pk if segment else None)
    except ValidationError as exc:
        return _page(request, segment=segment, definition=definition, form=form, error=exc,
                     error_input=_error_input(exc, origins), status=422)
    except NotFoundError:
        return redirect("dashboard:segments")
    messages.success(request, _("Segment “%(name)s” saved.") % {"name": saved.name})
    return redirect("dashboard:segment_edit", pk=saved.pk)


@role_required(MARKETER, write=True)
@require_POST
def segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a saved segment unless a campaign uses it."""
    segment = get_object_or_404(Segment, pk=pk)
    try:
        seg.segment_delete(segment_id=segment.pk)
    except ConflictError:
        messages.error(request, _("“%(name)s” is used by a campaign and cannot be deleted.")
                       % {"name": segment.name})
        return redirect("dashboard:segment_edit", pk=segment.pk)
    except NotFoundError:
        pass
    messages.success(request, _("Segment “%(name)s” deleted.") % {"name": segment.name})
    return redirect("dashboard:segments")


@role_required(MARKETER, write=True)
@require_POST
def segment_recount_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Count a saved segment again now."""
    with contextlib.suppress(NotFoundError):  # deleted meanwhile: the list shows it gone
        seg.segment_recount(segment_id=pk, now=timezone.now())
    return redirect("dashboard:segments")


urlpatterns: list[URLPattern] = [
    path("", segment_list, name="segments"),
    path("count/", segment_count_view, name="segment_count"),
    path("save/", segment_save_view, name="segment_save"),
    path("<int:pk>/", segment_edit, name="segment_edit"),
    path("<int:pk>/delete/", segment_delete_view, name="segment_delete"),
    path("<int:pk>/recount/", segment_recount_view, name="segment_recount"),
]
