"""The REST API: one NinjaAPI under /api/v1/ that mounts each app's router."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(
    title="Vafa API",
    version="1",
    docs_url="/docs",
    urls_namespace="api-v1",
)
