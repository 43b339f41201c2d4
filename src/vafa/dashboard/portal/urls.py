"""URLs of the member portal (mounted at /p/)."""

from __future__ import annotations

from django.urls import path

from vafa.dashboard.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("e/<str:token>/", views.enter, name="enter"),
    path("redeem/", views.redeem, name="redeem"),
    path("referral/", views.referral, name="referral"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("push/", views.push_subscribe, name="push"),
    path("export/", views.export, name="export"),
    path("delete/", views.delete_request, name="delete"),
    path("sw.js", views.service_worker, name="service_worker"),
]
