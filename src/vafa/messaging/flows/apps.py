"""Lifecycle flows: triggered, per-customer message sequences (welcome, thank-you, win-back, …).

A Django app of its own (label `flows`) inside the messaging package, so its tables and
migrations evolve apart from the outbox's; see docs/decisions.md.
"""
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FlowsConfig(AppConfig):
    name = "vafa.messaging.flows"
    label = "flows"
    verbose_name = _("Lifecycle flows")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Listen to the shop's change feed and to loyalty events (the triggers of flows)."""
        from vafa.customers import changes
        from vafa.loyalty import events
        from vafa.messaging.flows import triggers

        changes.register("flows", triggers.on_change)
        events.subscribe(
            triggers.on_loyalty_event,
            names=[events.TIER_CHANGED, events.POINTS_EXPIRING, events.REWARD_AVAILABLE],
        )
