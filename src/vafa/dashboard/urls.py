"""URLs of the merchant dashboard (mounted at /dashboard/)."""

from django.urls import include, path

from vafa.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("customers/", include("vafa.dashboard.customers")),
    path("goals/", include("vafa.dashboard.goals")),
    path("segments/", include("vafa.dashboard.segments")),
    path("results/", include("vafa.dashboard.results")),
    path("assets/<str:tag>/<str:name>", views.asset, name="asset"),
]
