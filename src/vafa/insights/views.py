"""The analysis report of the latest run, for the shop's team (every role reads it)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from vafa.analytics.report import render_report
from vafa.core.roles import MARKETER, SUPPORT, role_required
from vafa.insights.selectors import latest_run

REPORT_LANGS = ("fa", "ar", "en")


@role_required(MARKETER, SUPPORT)
@require_GET
def report(request: HttpRequest) -> HttpResponse:
    run = latest_run()
    if run is None:
        return HttpResponse(_("No analysis yet: run `vafa insights refresh` or wait for the "
                              "nightly run."), status=404, content_type="text/plain; charset=utf-8")
    lang = request.GET.get("lang") or (get_language() or "fa")[:2]
    if lang not in REPORT_LANGS:
        lang = "fa"
    return HttpResponse(render_report(run.summary, lang=lang))


@role_required(MARKETER, SUPPORT)
@require_GET
def summary(request: HttpRequest) -> HttpResponse:
    run = latest_run()
    if run is None:
        return JsonResponse({"error": {"code": "not_found", "message": "no analysis yet"}},
                            status=404)
    return JsonResponse(run.summary, json_dumps_params={"ensure_ascii": False})
