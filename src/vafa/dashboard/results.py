"""Results pages: what each flow, campaign and variant did against its control group
(mounted under /dashboard/results/)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
