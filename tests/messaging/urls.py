"""The project's URLs plus messaging's, until the project mounts `vafa.messaging.urls` itself."""

from django.urls import URLPattern, URLResolver, include, path

from vafa import urls as project

project_urls: list[URLPattern | URLResolver] = list(project.urlpatterns)  # type: ignore[arg-type]
_mounted = any(getattr(p, "namespace", None) == "messaging" for p in project_urls)
urlpatterns: list[URLPattern | URLResolver] = (
    project_urls if _mounted else [path("m/", include("vafa.messaging.urls")), *project_urls]
)
