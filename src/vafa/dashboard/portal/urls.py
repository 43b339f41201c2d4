"""URLs of the member portal (mounted at /p/). Every portal page may be framed by the shop's
own origins (`framing.framable`); staff pages elsewhere stay unframeable."""

from __future__ import annotations

from django.urls import URLPattern, path

from vafa.dashboard.portal import views
from vafa.dashboard.portal.framing import framable

app_name = "portal"
_pages: list[tuple[str, views.View, str]] = [
    ("", views.home, "home"),
    ("sign-in/", views.sign_in, "sign_in"),
    ("sign-out/", views.sign_out, "sign_out"),
    ("sign-out-everywhere/", views.sign_out_everywhere, "sign_out_everywhere"),
    ("e/<str:token>/", views.enter, "enter"),
    ("redeem/", views.redeem, "redeem"),
    ("referral/", views.referral, "referral"),
    ("leaderboard/", views.leaderboard, "leaderboard"),
    ("push/", views.push_subscribe, "push"),
    ("export/", views.export, "export"),
    ("delete/", views.delete_request, "delete"),
    ("sw.js", views.service_worker, "service_worker"),
]
urlpatterns: list[URLPattern] = [path(route, framable(view), name=name)
                                 for route, view, name in _pages]
