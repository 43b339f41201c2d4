"""The REST API: one NinjaAPI under /api/v1/ that mounts each app's router.

Every error answers `{"error": {"code", "message", "field"?}}` (`vafa.core.api_errors`).
"""

from __future__ import annotations

from ninja import NinjaAPI

from vafa.core.api_errors import install
from vafa.customers.api import router as customers_router
from vafa.customers.webhooks import router as webhooks_router
from vafa.dashboard.portal.api import router as portal_router
from vafa.feedback.api import router as feedback_router
from vafa.loyalty.api import router as loyalty_router

api = NinjaAPI(
    title="Vafa API",
    version="1",
    docs_url="/docs",
    urls_namespace="api-v1",
    description=(
        "Authenticate with `Authorization: Bearer <API key>` (create one with "
        "`vafa apikey create NAME`). Every write needs an `Idempotency-Key` header. Errors "
        'are `{"error": {"code", "message", "field"}}`. Lists use cursor pagination.'
    ),
)
install(api)
api.add_router("/", customers_router)
api.add_router("/webhooks", webhooks_router)
api.add_router("/", loyalty_router)
api.add_router("/", feedback_router)
api.add_router("/", portal_router)
