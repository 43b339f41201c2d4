from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "vafa.loyalty"
    label = "loyalty"
    verbose_name = _("Loyalty club")

    def ready(self) -> None:
        """Earn and reverse points from the shop's change feed. Loyalty is installed before the
        flows, so it registers first and a thank-you message already sees the order's points."""
        from vafa.customers import changes
        from vafa.loyalty import consumers

        changes.register("loyalty", consumers.on_change)
