"""URLs of the merchant dashboard (mounted at /dashboard/)."""

from django.urls import path

from vafa.dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("assets/<str:tag>/<str:name>", views.asset, name="asset"),
]
