"""The messaging test URLs plus anymail's webhooks, mounted as the project should mount them:
`path("anymail/", include("anymail.urls"))`."""

from django.urls import URLPattern, URLResolver, include, path

from tests.messaging.urls import urlpatterns as messaging_urlpatterns

_mounted = any(getattr(p, "namespace", None) == "anymail" for p in messaging_urlpatterns)
urlpatterns: list[URLPattern | URLResolver] = (
    messaging_urlpatterns if _mounted
    else [path("anymail/", include("anymail.urls")), *messaging_urlpatterns]
)
