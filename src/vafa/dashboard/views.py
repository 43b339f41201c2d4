"""Dashboard pages: thin views that read stored results and render them."""

from __future__ import annotations

import functools
import gzip
from importlib.metadata import version
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from vafa.core.roles import MARKETER, SUPPORT, role_required
from vafa.dashboard import selectors
from vafa.dashboard.overview import overview_for_run
from vafa.insights.selectors import latest_run_key

FONT_FILE = Path(__file__).resolve().parents[1] / "static" / "fonts" / "Vazirmatn-Variable.woff2"
PLOTLY_VERSION = version("plotly")
_YEAR = 365 * 24 * 3600


@role_required(MARKETER, SUPPORT)
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Headline KPIs, RFM segments, trends and customers worth saving, from the latest run."""
    run = latest_run_key()
    context: dict[str, object] = {
        "shop_name": selectors.shop_name(),
        "active": "overview",
        "plotly_version": PLOTLY_VERSION,
    }
    if run is not None:
        context["overview"] = overview_for_run(
            run, selectors.customers_worth_saving(), get_language()
        )
    return render(request, "dashboard/overview.html", context)


@functools.lru_cache(maxsize=4)
def _asset(name: str) -> tuple[bytes, bytes, str]:
    """The vendored asset `name` as (raw, gzipped, content type), read once per process."""
    if name == "plotly.min.js":
        from plotly.offline import get_plotlyjs

        raw = get_plotlyjs().encode()
        kind = "text/javascript; charset=utf-8"
    elif name == "vazirmatn.woff2":
        raw, kind = FONT_FILE.read_bytes(), "font/woff2"
    else:
        raise Http404(name)
    return raw, gzip.compress(raw, compresslevel=6), kind


@require_GET
def asset(request: HttpRequest, name: str, tag: str) -> HttpResponse:
    """Serve plotly.js (from the installed plotly package) and the vendored font, cached for good.

    Both live outside the static folders the staticfiles finders search (plotly ships its
    JavaScript inside the Python package), and no page may fetch them from a CDN; `tag` (the
    plotly version) changes the URL when the file changes, so browsers may cache it for a year.
    """
    raw, packed, kind = _asset(name)
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "") and name.endswith(".js")
    response = HttpResponse(packed if use_gzip else raw, content_type=kind)
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = f"public, max-age={_YEAR}, immutable"
    return response
