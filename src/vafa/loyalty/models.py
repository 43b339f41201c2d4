"""The loyalty club's records: program settings, earning rules, tiers, members and their ledger.

The ledger follows double-entry habits (django-hordak): points live in append-only
`LedgerEntry` rows; every credit opens a `Lot` and every debit records which lots it consumed
(`Allocation`). From these three tables every number is derived and checkable:

- balance (ledger) = Σ entry.points = Σ lot.remaining − debt
- lot.remaining = lot.points − Σ its allocations (a lot is never spent twice)
- debt = Σ over debits of (−points − Σ their allocations) (what a reversal could not take back)

`Member.balance` and `Member.debt` are caches written in the same transaction as the entries,
under the member's row lock; `vafa loyalty reconcile` proves them equal to the ledger. Rows are
written only by `vafa.loyalty.services`.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Category, Customer, Order, Product, money_field

SYSTEM_ACTOR = "system"


def default_currency() -> str:
    """The shop's default currency (`VAFA_DEFAULT_CURRENCY`, Toman unless configured)."""
    return str(getattr(settings, "VAFA_DEFAULT_CURRENCY", "IRT"))


class ExpiryPolicy(models.TextChoices):
    ROLLING = "rolling", _("Months after earning")
    INACTIVITY = "inactivity", _("Months after last activity")
    YEAR_END = "year_end", _("End of the calendar year")
    NEVER = "never", _("Never")


class Calendar(models.TextChoices):
    JALALI = "jalali", _("Jalali (Persian)")
    GREGORIAN = "gregorian", _("Gregorian")


class TierMetric(models.TextChoices):
    POINTS = "points", _("Points earned")
    SPEND = "spend", _("Amount spent")


class ProgramSettings(models.Model):
    """The one row (id 1) of program-wide settings; read with `selectors.program_settings()`.

    Expiry policies (each lot gets its `expires_at` when it is credited):
    - `rolling`: `expiry_months` after the points were earned (the order's time for orders).
    - `inactivity`: `expiry_months` after the member's last earn or redemption; every such
      activity pushes all open lots' expiry forward, so active members never lose points.
    - `year_end`: at the start of the year following the year of earning (+ `expiry_years_after`
      years), in the shop's time zone and the chosen calendar: with Jalali, points earned in 1403
      expire at Nowruz 1404 (or 1405 with one extra year).
    - `never`.
    """

    currency = models.CharField(_("currency"), max_length=3, default=default_currency)
    point_value = models.DecimalField(
        _("value of one point"),
        max_digits=20,
        decimal_places=3,
        default=Decimal(100),
        help_text=_("What one point costs the shop, in the program currency."),
    )
    return_window_days = models.PositiveIntegerField(
        _("return window (days)"),
        default=14,
        help_text=_("Points from an order stay pending this long after the order."),
    )
    expiry_policy = models.CharField(
        _("expiry policy"),
        max_length=20,
        choices=ExpiryPolicy.choices,
        default=ExpiryPolicy.ROLLING,
    )
    expiry_months = models.PositiveSmallIntegerField(_("expiry (months)"), default=12)
    expiry_calendar = models.CharField(
        _("expiry calendar"), max_length=10, choices=Calendar.choices, default=Calendar.JALALI
    )
    expiry_years_after = models.PositiveSmallIntegerField(
        _("extra years before year-end expiry"), default=0
    )
    max_points_per_order = models.PositiveIntegerField(_("cap per order"), null=True, blank=True)
    max_points_per_period = models.PositiveIntegerField(_("cap per period"), null=True, blank=True)
    cap_period_days = models.PositiveIntegerField(_("cap period (days)"), default=30)
    tier_metric = models.CharField(
        _("tier qualification"),
        max_length=10,
        choices=TierMetric.choices,
        default=TierMetric.POINTS,
    )
    tier_window_days = models.PositiveIntegerField(_("tier window (days)"), default=365)
    tier_grace_days = models.PositiveIntegerField(_("tier grace period (days)"), default=30)
    first_reward_points = models.PositiveIntegerField(
        _("points for the first reward"), default=1000
    )
    endowed_points = models.PositiveIntegerField(
        _("head start shown to new members"),
        default=200,
        help_text=_("Shown as progress only; it is not credited (endowed progress)."),
    )
    retention_spend_fraction = models.DecimalField(
        _("retention spend cap (share of CLV)"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        default=Decimal("0.1"),
        help_text=_(
            "Rewards a member redeems in 12 months may cost at most this share of their "
            "predicted CLV (e.g. 0.1 = 10%). Empty: no cap. Members without a score have no cap."
        ),
    )
    vip_earn_multiplier = models.DecimalField(
        _("VIP points multiplier"),
        max_digits=5,
        decimal_places=2,
        default=Decimal(1),
        help_text=_(
            "VIP members (the top customers by predicted CLV) earn points on orders at this "
            "multiplier, or at their tier's when that is higher."
        ),
    )
    vip_free_shipping = models.BooleanField(_("free shipping for VIP members"), default=False)
    vip_early_access = models.BooleanField(_("early access for VIP members"), default=False)
    referral_cap = models.PositiveIntegerField(
        _("rewarded referrals per referrer per year"),
        null=True,
        blank=True,
        default=10,
        help_text=_("Further referrals are recorded but not rewarded. Empty: no cap."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("program settings")
        verbose_name_plural = _("program settings")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="loyalty_settings_single_row"),
            models.CheckConstraint(
                condition=Q(point_value__gte=0),
                name="loyalty_point_value_gte_0",
                violation_error_message=_("The point value cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(first_reward_points__gt=0),
                name="loyalty_first_reward_gt_0",
                violation_error_message=_("Points for the first reward must be more than zero."),
            ),
            models.CheckConstraint(
                condition=Q(retention_spend_fraction__isnull=True)
                | Q(retention_spend_fraction__gte=0),
                name="loyalty_retention_fraction_gte_0",
                violation_error_message=_("The retention spend cap cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(vip_earn_multiplier__gte=1),
                name="loyalty_vip_multiplier_gte_1",
                violation_error_message=_("The VIP points multiplier must be at least 1."),
            ),
        ]

    def __str__(self) -> str:
        return str(_("Program settings"))


class RuleKind(models.TextChoices):
    BASE_RATE = "base_rate", _("Points per amount spent")
    CATEGORY_MULTIPLIER = "category_multiplier", _("Category multiplier")
    PRODUCT_MULTIPLIER = "product_multiplier", _("Product multiplier")
    FIRST_ORDER = "first_order", _("First-order bonus")
    BIRTHDAY = "birthday", _("Birthday bonus")
    REVIEW = "review", _("Review bonus")
    SURVEY = "survey", _("Survey bonus")
    REFERRAL = "referral", _("Referral bonus")
    SIGNUP = "signup", _("Signup bonus")


ORDER_RULE_KINDS = frozenset(
    {
        RuleKind.BASE_RATE,
        RuleKind.CATEGORY_MULTIPLIER,
        RuleKind.PRODUCT_MULTIPLIER,
        RuleKind.FIRST_ORDER,
    }
)
BONUS_RULE_KINDS = frozenset(
    {RuleKind.BIRTHDAY, RuleKind.REVIEW, RuleKind.SURVEY, RuleKind.REFERRAL, RuleKind.SIGNUP}
)


class EarningRule(models.Model):
    """One way to earn points, edited in the admin. What each kind uses:

    - `base_rate`: `points` per `per_amount` of `currency` spent (e.g. 1 point per 10,000 IRT).
    - `category_multiplier` / `product_multiplier`: lines of `category` (or its sub-categories)
      or of `product` earn `multiplier` times the base rate; the largest matching one wins.
    - the bonuses (`first_order`, `birthday`, `review`, `survey`, `referral`, `signup`): a fixed
      `points`, given on the customer's first paid order, on their birthday (the hourly
      `birthdays_award`), for a published review or an answered survey, for a settled referral,
      and when a customer who has just joined is reported (`signup_award`).
    `cap_per_order` and `cap_per_period` (over `cap_period_days`) limit what this rule gives.
    A rule counts only while `active` and inside its validity dates; a new rule starts switched
    off so it can be simulated on past orders first.
    """

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=30, choices=RuleKind.choices)
    active = models.BooleanField(_("active"), default=False)
    starts_at = models.DateTimeField(_("valid from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("valid until"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    points = models.PositiveIntegerField(_("points"), default=0)
    per_amount = money_field(_("per amount"), null=True, blank=True)
    multiplier = models.DecimalField(
        _("multiplier"), max_digits=6, decimal_places=2, null=True, blank=True
    )
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("category"),
    )
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("product"),
    )
    cap_per_order = models.PositiveIntegerField(_("cap per order"), null=True, blank=True)
    cap_per_period = models.PositiveIntegerField(_("cap per period"), null=True, blank=True)
    cap_period_days = models.PositiveIntegerField(_("cap period (days)"), default=30)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["kind", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.BASE_RATE)
                | (Q(per_amount__gt=0) & Q(points__gt=0) & ~Q(currency="")),
                name="loyalty_rule_base_rate_complete",
                violation_error_message=_(
                    "A points-per-amount rule needs its points, the amount (more than zero) and "
                    "the currency."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.CATEGORY_MULTIPLIER)
                | (Q(category__isnull=False) & Q(multiplier__gte=0)),
                name="loyalty_rule_category_complete",
                violation_error_message=_(
                    "A category multiplier needs a category and a multiplier of zero or more."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(kind=RuleKind.PRODUCT_MULTIPLIER)
                | (Q(product__isnull=False) & Q(multiplier__gte=0)),
                name="loyalty_rule_product_complete",
                violation_error_message=_(
                    "A product multiplier needs a product and a multiplier of zero or more."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(
                    kind__in=sorted(k.value for k in (*BONUS_RULE_KINDS, RuleKind.FIRST_ORDER))
                )
                | Q(points__gt=0),
                name="loyalty_rule_bonus_has_points",
                violation_error_message=_("A bonus rule needs its points (more than zero)."),
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=F("starts_at")),
                name="loyalty_rule_dates_ordered",
                violation_error_message=_("“Valid until” must be after “valid from”."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    """A level of the club. A member qualifies with `min_points` or `min_spend` (whichever the
    program's tier metric says) within the rolling tier window; rank 0 is the entry tier."""

    name = models.CharField(_("name"), max_length=100)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True)
    min_points = models.PositiveIntegerField(_("points to qualify"), default=0)
    min_spend = money_field(_("spend to qualify"), default=0)
    earn_multiplier = models.DecimalField(
        _("points multiplier"), max_digits=5, decimal_places=2, default=Decimal(1)
    )
    free_shipping = models.BooleanField(_("free shipping"), default=False)
    early_access = models.BooleanField(_("early access"), default=False)
    exclusive_rewards = models.BooleanField(_("exclusive rewards"), default=False)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(
                condition=Q(earn_multiplier__gte=0),
                name="loyalty_tier_multiplier_gte_0",
                violation_error_message=_("The points multiplier cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(min_spend__gte=0),
                name="loyalty_tier_spend_gte_0",
                violation_error_message=_("The spend to qualify cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A customer's loyalty account, created on first need. `balance` and `debt` are caches of
    the ledger, updated only under this row's lock in the same transaction as the entries."""

    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="loyalty", verbose_name=_("customer")
    )
    balance = models.IntegerField(_("balance"), default=0)
    debt = models.PositiveIntegerField(_("points owed"), default=0)
    tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
        verbose_name=_("tier"),
    )
    tier_since = models.DateTimeField(_("in tier since"), null=True, blank=True)
    tier_below_since = models.DateTimeField(
        _("below tier since"),
        null=True,
        blank=True,
        help_text=_("Start of the grace period before the member drops a tier."),
    )
    joined_at = models.DateTimeField(_("joined at"), default=now)
    # Goes up by one with every write of the member's ledger (`ledger_sql.set_member_cache`):
    # an optimistic write (`vafa.core.batch`) is written only if it still reads what it read.
    version = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-id"]
        constraints = [
            # balance = Σ lot.remaining − debt, and remaining is never negative.
            models.CheckConstraint(
                condition=Q(balance__gte=-F("debt")), name="loyalty_member_balance_covers_debt"
            ),
        ]

    def __str__(self) -> str:
        return str(self.customer)


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    RESTORE = "restore", _("Returned")
    EXPIRE = "expire", _("Expired")
    REVERSE = "reverse", _("Reversed")
    ADJUST = "adjust", _("Adjusted")


CREDIT_KINDS = frozenset({EntryKind.EARN, EntryKind.RESTORE})
DEBIT_KINDS = frozenset({EntryKind.REDEEM, EntryKind.EXPIRE, EntryKind.REVERSE})


class AppendOnlyError(RuntimeError):
    """Somebody tried to change or delete a ledger row; corrections are new entries."""


class LedgerEntry(models.Model):
    """One movement of points, never changed or deleted. Credits (`earn`, `restore`, positive
    `adjust`) open a lot; debits (`redeem`, `expire`, `reverse`, negative `adjust`) consume lots
    through allocations. `occurred_at` is the business time (the order's time for order entries),
    `created_at` when it was booked. `actor` is who caused it: `system`, `user:<id>`,
    `api_key:<prefix>`."""

    # No index of their own: `member` leads the idempotency key's unique index and the history
    # index, `order` leads ("order", "kind"). A single-column index would only cost every
    # insert (and gives the planner a worse way to check a key: all of a member's entries).
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("member"),
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    points = models.IntegerField(_("points"))
    balance_after = models.IntegerField(_("balance after"))
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(_("booked at"))
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="loyalty_entries",
        verbose_name=_("order"),
        db_index=False,
    )
    related_entry = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("related entry"),
        db_index=False,  # a partial index in Meta: few entries have one
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    actor = models.CharField(_("by"), max_length=150)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["member", "occurred_at"], name="loyalty_entry_member_time"),
            # The optional references are indexed only where they are set: most entries
            # (adjustments, redemptions, expiries) have neither, and each index a row skips
            # is one insert less per write. A look-up by a value (`order_id = …`) implies
            # the condition, so both databases still use these indexes for it.
            models.Index(
                fields=["order", "kind"],
                condition=Q(order__isnull=False),
                name="loyalty_entry_order_kind",
            ),
            models.Index(
                fields=["related_entry"],
                condition=Q(related_entry__isnull=False),
                name="loyalty_entry_related",
            ),
            models.Index(fields=["created_at"], name="loyalty_entry_created"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "idempotency_key"], name="loyalty_entry_idempotency_key"
            ),
            models.CheckConstraint(
                condition=(Q(kind__in=sorted(k.value for k in CREDIT_KINDS)) & Q(points__gt=0))
                | (Q(kind__in=sorted(k.value for k in DEBIT_KINDS)) & Q(points__lt=0))
                | (Q(kind=EntryKind.ADJUST) & ~Q(points=0)),
                name="loyalty_entry_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind=EntryKind.ADJUST) | ~Q(reason=""),
                name="loyalty_adjustment_has_reason",
            ),
            models.CheckConstraint(condition=~Q(actor=""), name="loyalty_entry_has_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("ledger entries are append-only; post a correcting entry")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("ledger entries are append-only; post a correcting entry")


class Lot(models.Model):
    """Points of a credit: spendable from `available_at` (after the return window) until
    `expires_at` (never when empty). `remaining` falls as debits allocate from it."""

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="lots", verbose_name=_("member")
    )
    # One lot per credit entry, except a cancelled redemption, which returns each lot it took
    # as a new lot with that lot's dates (so returned points keep their expiry).
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="lots", verbose_name=_("entry")
    )
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("order"),
        db_index=False,  # a partial index in Meta, as `LedgerEntry.order`'s
    )
    points = models.PositiveIntegerField(_("points"))
    remaining = models.PositiveIntegerField(_("remaining"))
    available_at = models.DateTimeField(_("available from"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # When members were told these points expire soon (cleared when the expiry moves).
    expiry_notified_at = models.DateTimeField(_("expiry notice sent"), null=True, blank=True)
    # When the `reward.available` scan took the end of this lot's pending time into account
    # (set at once for points available from the start): each maturing is looked at once.
    maturity_noticed_at = models.DateTimeField(_("maturity noticed at"), null=True, blank=True)
    # Whether points are left (remaining > 0), kept by the database. The open-lot indexes are
    # partial on this flag rather than on `remaining`: a column in an index's condition makes
    # every change of it an update PostgreSQL cannot do in place (no HOT update), so each
    # redemption wrote a new entry into every index of the lot and left a dead row version for
    # vacuum. The flag changes once, when the lot runs out; look-ups of open lots filter on it.
    is_open = models.GeneratedField(
        expression=ExpressionWrapper(Q(remaining__gt=0), output_field=models.BooleanField()),
        output_field=models.BooleanField(),
        db_persist=True,
        verbose_name=_("has points left"),
    )

    class Meta:
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        ordering = ["expires_at", "id"]
        indexes = [
            models.Index(
                fields=["member", "expires_at"],
                condition=Q(is_open=True),
                name="loyalty_lot_open_member",
            ),
            models.Index(
                fields=["expires_at"], condition=Q(is_open=True), name="loyalty_lot_open_expiry"
            ),
            models.Index(
                fields=["available_at"],
                condition=Q(maturity_noticed_at__isnull=True),
                name="loyalty_lot_maturing",
            ),
            models.Index(
                fields=["order"], condition=Q(order__isnull=False), name="loyalty_lot_order"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="loyalty_lot_points_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")),
                name="loyalty_lot_remaining_within_points",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.points}"


class Allocation(models.Model):
    """`points` of a lot consumed by a debit entry: a redemption, an expiry, a reversal, a
    negative adjustment, or a later credit paying back what a reversal left owed."""

    # `lot` leads the unique ("lot", "entry") index; a separate one would only cost inserts.
    lot = models.ForeignKey(
        Lot, on_delete=models.PROTECT, related_name="allocations", db_index=False
    )
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="allocations")
    points = models.PositiveIntegerField(_("points"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        constraints = [
            models.UniqueConstraint(fields=["lot", "entry"], name="loyalty_allocation_once"),
            models.CheckConstraint(condition=Q(points__gt=0), name="loyalty_allocation_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.lot_id}→{self.entry_id}: {self.points}"


class TierChange(models.Model):
    """A member moving between tiers (or entering the first one), with the value that decided."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="tier_changes", verbose_name=_("member")
    )
    from_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("from"),
    )
    to_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("to"),
    )
    changed_at = models.DateTimeField(_("changed at"))
    metric_value = models.DecimalField(_("qualifying value"), max_digits=20, decimal_places=3)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["member", "changed_at"], name="loyalty_tierchange_member")]

    def __str__(self) -> str:
        return f"{self.from_tier_id}→{self.to_tier_id}"


class RewardKind(models.TextChoices):
    FIXED_DISCOUNT = "fixed_discount", _("Fixed discount")
    PERCENT_DISCOUNT = "percent_discount", _("Percent discount")
    FREE_SHIPPING = "free_shipping", _("Free shipping")
    FREE_PRODUCT = "free_product", _("Free product")
    GIFT = "gift", _("Gift")
    EXCLUSIVE_ACCESS = "exclusive_access", _("Exclusive access")
    EVENT = "event", _("Event")


class Reward(models.Model):
    """Something a member can buy with points. `stock` (empty: unlimited) falls with each
    redemption and rises when one is cancelled; `per_member_limit` counts a member's redemptions
    that were not cancelled; `min_tier` restricts it to that tier and the ones above;
    `exclusive` to tiers whose benefits include exclusive rewards."""

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=RewardKind.choices)
    points_cost = models.PositiveIntegerField(_("points"))
    active = models.BooleanField(_("active"), default=True)
    starts_at = models.DateTimeField(_("valid from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("valid until"), null=True, blank=True)
    discount_amount = money_field(_("discount amount"), null=True, blank=True)
    discount_percent = models.DecimalField(
        _("discount percent"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("product"),
    )
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(_("limit per member"), null=True, blank=True)
    min_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("lowest tier"),
    )
    exclusive = models.BooleanField(_("exclusive"), default=False)
    coupon_prefix = models.CharField(_("code prefix"), max_length=10, blank=True)
    coupon_valid_days = models.PositiveIntegerField(_("code valid (days)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["points_cost", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(points_cost__gt=0),
                name="loyalty_reward_cost_gt_0",
                violation_error_message=_("A reward must cost more than zero points."),
            ),
            models.CheckConstraint(
                condition=~Q(kind=RewardKind.FIXED_DISCOUNT)
                | (Q(discount_amount__gt=0) & ~Q(currency="")),
                name="loyalty_reward_fixed_has_amount",
                violation_error_message=_(
                    "A fixed discount needs its amount (more than zero) and currency."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(kind=RewardKind.PERCENT_DISCOUNT)
                | (Q(discount_percent__gt=0) & Q(discount_percent__lte=100)),
                name="loyalty_reward_percent_in_range",
                violation_error_message=_(
                    "A percent discount must be more than 0 and at most 100."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(kind=RewardKind.FREE_PRODUCT) | Q(product__isnull=False),
                name="loyalty_reward_free_product_has_product",
                violation_error_message=_("A free product reward needs its product."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RedemptionStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")
    USED = "used", _("Used")
    CANCELLED = "cancelled", _("Cancelled")


class Redemption(models.Model):
    """A reward bought with points: the redeem entry that paid for it, the unique coupon code
    handed to the shop, and, if cancelled, the entry that gave the points back."""

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        related_name="redemption",
        verbose_name=_("entry"),
    )
    code = models.CharField(_("code"), max_length=40, unique=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=RedemptionStatus.choices,
        default=RedemptionStatus.ISSUED,
    )
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("code expires at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("return entry"),
    )

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["member", "reward", "status"], name="loyalty_redemption_limit"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=RedemptionStatus.CANCELLED) | Q(cancel_entry__isnull=False),
                name="loyalty_cancelled_redemption_returned",
            ),
        ]

    def __str__(self) -> str:
        return self.code


# ---------------------------------------------------------------------------------------------
# Outgoing webhooks (an outbox: deliveries are written with the ledger change they report).


class WebhookEvent(models.TextChoices):
    POINTS_CHANGED = "points.changed", _("Points changed")
    TIER_CHANGED = "tier.changed", _("Tier changed")
    REWARD_REDEEMED = "reward.redeemed", _("Reward redeemed")


def new_webhook_secret() -> str:
    """A fresh signing secret (256 random bits, hex)."""
    return secrets.token_hex(32)


class WebhookEndpoint(models.Model):
    """A URL of the shop that receives signed loyalty events. `events` lists the event names
    it wants (empty: all of them)."""

    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(
        _("signing secret"),
        max_length=200,
        default=new_webhook_secret,
        help_text=_("Signs each delivery (HMAC-SHA256); share it with the receiving system."),
    )
    events = models.JSONField(
        _("events"),
        default=list,
        blank=True,
        help_text=_("Event names to send, e.g. [\"points.changed\"]; empty sends all."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    @staticmethod
    def wanted_by(events: list[str], event: str) -> bool:
        """Whether an endpoint asking for `events` (empty: all) gets `event`."""
        return not events or event in events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event for one endpoint, written in the same transaction as the change it reports
    and sent (and retried with back-off) by `webhooks.webhooks_deliver`."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    event = models.CharField(_("event"), max_length=50)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created at"))
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="loyalty_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id}"


# ---------------------------------------------------------------------------------------------
# Referrals.


class ReferralCode(models.Model):
    """A member's own code to share (and the link built from it)."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, related_name="referral_code", verbose_name=_("member")
    )
    code = models.CharField(_("code"), max_length=20, unique=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")

    def __str__(self) -> str:
        return self.code


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a paid order past the return window")
    REWARDED = "rewarded", _("Rewarded")
    REJECTED = "rejected", _("Rejected")
    CAPPED = "capped", _("Not rewarded: referrer cap reached")


class Referral(models.Model):
    """A referee who joined with a referrer's code. Both are rewarded once the referee's first
    paid order is past the return window and not refunded (`services.referrals_settle`)."""

    referrer = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("referrer")
    )
    referee = models.OneToOneField(
        Member, on_delete=models.PROTECT, related_name="referred_by", verbose_name=_("referee")
    )
    code = models.CharField(_("code used"), max_length=20)
    status = models.CharField(
        _("status"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PENDING
    )
    reject_reason = models.CharField(_("why rejected"), max_length=200, blank=True)
    order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("qualifying order"),
    )
    created_at = models.DateTimeField(_("created at"))
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"], name="loyalty_referral_status")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(referrer=F("referee")), name="loyalty_referral_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id}"


# ---------------------------------------------------------------------------------------------
# Gamification: badges from rules, time-boxed challenges, an opt-in pseudonymous leaderboard.


class BadgeRule(models.TextChoices):
    ORDERS = "orders", _("Paid orders (at least the threshold)")
    REVIEWS = "reviews", _("Reviews written (published here, or events of type \"review\")")
    POINTS_EARNED = "points_earned", _("Points earned in total")
    NOWRUZ_BUYER = "nowruz_buyer", _("Bought during Nowruz (1–13 Farvardin)")


class Badge(models.Model):
    """A badge the member earns when its rule holds, e.g. "5 orders" (`orders`, threshold 5).
    Badges are never taken back."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), unique=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    rule = models.CharField(_("rule"), max_length=20, choices=BadgeRule.choices)
    threshold = models.PositiveIntegerField(_("threshold"), default=1)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("badge")
        verbose_name_plural = _("badges")
        ordering = ["rule", "threshold", "id"]

    def __str__(self) -> str:
        return self.name


class MemberBadge(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="badges", verbose_name=_("member")
    )
    badge = models.ForeignKey(
        Badge, on_delete=models.PROTECT, related_name="awards", verbose_name=_("badge")
    )
    awarded_at = models.DateTimeField(_("awarded at"))

    class Meta:
        verbose_name = _("member badge")
        verbose_name_plural = _("member badges")
        constraints = [
            models.UniqueConstraint(fields=["member", "badge"], name="loyalty_badge_once"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.badge_id}"


class ChallengeMetric(models.TextChoices):
    ORDERS = "orders", _("Paid orders in the period")
    POINTS_EARNED = "points_earned", _("Points earned in the period")


class Challenge(models.Model):
    """A time-boxed goal ("3 orders before Yalda"): members who reach `target` between
    `starts_at` and `ends_at` get `reward_points` once."""

    name = models.CharField(_("name"), max_length=200)
    description = models.CharField(_("description"), max_length=300, blank=True)
    metric = models.CharField(_("measured by"), max_length=20, choices=ChallengeMetric.choices)
    target = models.PositiveIntegerField(_("target"))
    reward_points = models.PositiveIntegerField(_("points on completion"), default=0)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")
        ordering = ["-starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="loyalty_challenge_dates_ordered",
                violation_error_message=_("The challenge must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(target__gt=0),
                name="loyalty_challenge_target_gt_0",
                violation_error_message=_("The challenge's target must be more than zero."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ChallengeCompletion(models.Model):
    challenge = models.ForeignKey(
        Challenge, on_delete=models.PROTECT, related_name="completions", verbose_name=_("challenge")
    )
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="challenge_completions",
        verbose_name=_("member"),
    )
    completed_at = models.DateTimeField(_("completed at"))
    entry = models.ForeignKey(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("points entry"),
    )

    class Meta:
        verbose_name = _("completed challenge")
        verbose_name_plural = _("completed challenges")
        constraints = [
            models.UniqueConstraint(fields=["challenge", "member"], name="loyalty_challenge_once"),
        ]

    def __str__(self) -> str:
        return f"{self.challenge_id}: {self.member_id}"


class LeaderboardEntry(models.Model):
    """A member's opt-in to the leaderboard, under a pseudonym (the board never shows names)."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, related_name="leaderboard", verbose_name=_("member")
    )
    pseudonym = models.CharField(_("pseudonym"), max_length=40, unique=True)
    opted_in_at = models.DateTimeField(_("opted in at"))

    class Meta:
        verbose_name = _("leaderboard opt-in")
        verbose_name_plural = _("leaderboard opt-ins")

    def __str__(self) -> str:
        return self.pseudonym
