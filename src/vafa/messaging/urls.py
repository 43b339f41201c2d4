"""Messaging URLs, mounted by the project under `m/`:
`path("m/", include("vafa.messaging.urls"))`."""

from __future__ import annotations

from django.urls import path

from vafa.messaging import views

app_name = "messaging"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("push/<str:token>/", views.push_subscribe, name="push_subscribe"),
    path("c/<str:token>/", views.click, name="click"),
    path("o/<str:token>/", views.open_pixel, name="open"),
    path("telegram/<str:secret>/", views.telegram_webhook, name="telegram_webhook"),
    path("sms/<str:secret>/", views.sms_inbound, name="sms_inbound"),
]
