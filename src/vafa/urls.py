"""Root URL configuration."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from vafa.api import api
from vafa.core.api_errors import not_found_view

urlpatterns = [
    # The API first: Django tries the patterns in order, and the shops' API calls are most of
    # the requests (the loyalty writes' hot path).
    path("api/v1/", api.urls),
    path("", RedirectView.as_view(url="/dashboard/", permanent=False)),
    path("admin/", admin.site.urls),
    path("dashboard/", include("vafa.dashboard.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("insights/", include("vafa.insights.urls")),
    path("m/", include("vafa.messaging.urls")),
    path("f/", include("vafa.feedback.urls")),
    path("p/", include("vafa.dashboard.portal.urls")),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("api/docs/", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    # Anything else under /api/ answers a JSON 404 in the API's error shape.
    re_path(r"^api/", not_found_view),
]

if settings.ANYMAIL.get("WEBHOOK_SECRET"):  # never accept unauthenticated bounce reports
    urlpatterns.insert(0, path("anymail/", include("anymail.urls")))
