"""Results of the customer-base analysis, stored so pages never recompute on request."""

from __future__ import annotations

from django.db import models
from django.db.models import F
from django.utils.functional import Promise
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Customer, money_field


class RfmSegment(models.TextChoices):
    """The named RFM segments of `vafa.analytics.rfm`, with the names merchants read."""

    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential loyalist")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANT_LOSE = "cant_lose", _("Can't lose")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


# Segments of customers who used to buy and are slipping away: the ones a win-back can still
# save (the overview's "customers worth saving", served by a partial index on their CLV).
SAVEABLE_SEGMENTS: tuple[str, ...] = (
    RfmSegment.CANT_LOSE,
    RfmSegment.AT_RISK,
    RfmSegment.ABOUT_TO_SLEEP,
)


class LoyaltyLabel(models.TextChoices):
    """The behavioural loyalty labels of `vafa.analytics.diagnosis` (K8)."""

    HABITUAL = "habitual", _("Habitual")
    INCENTIVE_DRIVEN = "incentive_driven", _("Incentive-driven")
    PRICE_DRIVEN = "price_driven", _("Price-driven")
    LAPSING = "lapsing", _("Lapsing")
    ONE_TIME = "one_time", _("One-time")
    REGULAR = "regular", _("Regular")


class AnalysisRun(models.Model):
    """One run of the analytics library over the shop's orders."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started at"), default=now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    as_of = models.DateField(_("as of"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices,
                              default=Status.RUNNING)
    triggered_by = models.CharField(_("triggered by"), max_length=100, blank=True)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    # Where the run's per-customer purchase totals (`CustomerStats`) stop: when they were read,
    # the highest customer id and the change feed's last id they include. Customers beyond any
    # of these marks are recomputed from their orders when a segment is counted.
    stats_at = models.DateTimeField(_("purchase totals read at"), null=True, blank=True)
    stats_last_customer = models.BigIntegerField(null=True, blank=True, editable=False)
    stats_last_change = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("analysis run")
        verbose_name_plural = _("analysis runs")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "-started_at"], name="run_status_time")]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.status}"


class CustomerScore(models.Model):
    """The latest scores of one customer: segment, chance of being alive, predicted value."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="score",
                                    verbose_name=_("customer"))
    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="scores",
                            verbose_name=_("analysis run"))
    rfm_segment = models.CharField(_("RFM segment"), max_length=30, db_index=True,
                                   choices=RfmSegment.choices)
    r_score = models.PositiveSmallIntegerField(_("recency score"))
    f_score = models.PositiveSmallIntegerField(_("frequency score"))
    m_score = models.PositiveSmallIntegerField(_("monetary score"))
    loyalty_label = models.CharField(_("loyalty label"), max_length=30, db_index=True,
                                     choices=LoyaltyLabel.choices)
    p_alive = models.FloatField(_("probability still active"), null=True, blank=True)
    expected_purchases = models.FloatField(_("expected purchases"), null=True, blank=True)
    predicted_clv = money_field(_("predicted CLV"), null=True, blank=True, db_index=True)
    retention_spend_ceiling = money_field(_("retention spend ceiling"), null=True, blank=True)
    vip = models.BooleanField(_("VIP"), default=False, db_index=True)
    computed_at = models.DateTimeField(_("computed at"), default=now)

    class Meta:
        verbose_name = _("customer score")
        verbose_name_plural = _("customer scores")
        ordering = ["-predicted_clv"]
        indexes = [
            # The overview's most valuable slipping customers, read in order from this index:
            # on the CLV index alone PostgreSQL walked past every richer champion first, a
            # cost that grew with the shop (0.2 s at a million customers).
            models.Index(
                F("predicted_clv").desc(), "customer", name="score_saveable_clv",
                condition=models.Q(rfm_segment__in=SAVEABLE_SEGMENTS,
                                   predicted_clv__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.rfm_segment}"


class CustomerStats(models.Model):
    """One customer's purchase totals as of the last analysis run: how many purchases, what
    they kept paying (total − refunded), and when they last bought.

    The segment builder's order-count, spend and last-purchase filters read these instead of
    aggregating every order on each count (seconds at millions of orders). The refresh writes
    a row for every customer that exists when it runs (zeros for those who never bought), in
    one set-based statement; `computed_at` is when those totals were read, and the builder
    recomputes from the orders any customer created or buying since then. Changes to older
    orders (a refund, a cancellation) show at the next run.
    """

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, primary_key=True,
                                    related_name="purchase_stats", verbose_name=_("customer"))
    order_count = models.PositiveIntegerField(_("number of orders"), default=0, db_index=True)
    total_spent = money_field(_("total spent"), default=0, db_index=True)
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True, blank=True,
                                            db_index=True)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("customer purchase totals")
        verbose_name_plural = _("customer purchase totals")

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.order_count}"


class SegmentHistory(models.Model):
    """When a customer entered an RFM segment (one row per change, written by each analysis run),
    so the customer's page can show how they moved and flows can react to entering a segment."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE,
                                 related_name="segment_history", verbose_name=_("customer"))
    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="segment_changes",
                            verbose_name=_("analysis run"))
    rfm_segment = models.CharField(_("RFM segment"), max_length=30, choices=RfmSegment.choices)
    previous_segment = models.CharField(_("previous segment"), max_length=30, blank=True,
                                        choices=RfmSegment.choices)
    entered_at = models.DateTimeField(_("entered at"), default=now)

    class Meta:
        verbose_name = _("segment change")
        verbose_name_plural = _("segment changes")
        ordering = ["-entered_at"]
        indexes = [
            models.Index(fields=["customer", "-entered_at"], name="seghist_customer_time"),
            models.Index(fields=["rfm_segment", "-entered_at"], name="seghist_segment_time"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.previous_segment or '-'} → {self.rfm_segment}"


class Segment(models.Model):
    """A saved set of filters over customers (RFM segment, tier, city, CLV, …) that campaigns
    send to and the dashboard counts. `definition` is the builder's filter document, compiled to
    a query by `vafa.insights.segments`; membership is computed when used, never stored."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    definition = models.JSONField(_("filters"), default=dict, blank=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_count = models.PositiveIntegerField(_("last count"), null=True, blank=True)
    last_counted_at = models.DateTimeField(_("last counted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Goal(models.Model):
    """A SMART goal (K7): a metric, a target and a deadline, with the baseline it started from."""

    name = models.CharField(_("name"), max_length=200)
    metric = models.CharField(_("metric"), max_length=50)
    target = models.DecimalField(_("target"), max_digits=20, decimal_places=4)
    baseline = models.DecimalField(_("baseline"), max_digits=20, decimal_places=4,
                                   null=True, blank=True)
    start = models.DateField(_("start"))
    deadline = models.DateField(_("deadline"))
    owner = models.CharField(_("owner"), max_length=150, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)

    class Meta:
        verbose_name = _("goal")
        verbose_name_plural = _("goals")
        ordering = ["deadline", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(deadline__gt=models.F("start")),
                                   name="goal_deadline_after_start"),
        ]

    def __str__(self) -> str:
        return self.name


class CustomerNote(models.Model):
    """A note a team member left on a customer's page ("prefers calls after 5 pm"), kept with
    who wrote it and when. `idempotency_key` (from the form) makes a double submit write once."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes",
                                 verbose_name=_("customer"))
    body = models.TextField(_("note"))
    author = models.CharField(_("by"), max_length=150)
    created_at = models.DateTimeField(_("written at"), default=now)
    idempotency_key = models.CharField(max_length=255, unique=True)

    class Meta:
        verbose_name = _("customer note")
        verbose_name_plural = _("customer notes")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="note_customer_time")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.body[:40]}"


# The KPI series a goal can be set on (keys of the run summary's `kpis.series`), with the
# names merchants read and which way is better.
GOAL_METRICS: dict[str, tuple[Promise, str]] = {
    "retention_rate": (_("Retention rate"), "increase"),
    "churn_rate": (_("Churn rate"), "decrease"),
    "aov": (_("Average order value"), "increase"),
    "revenue": (_("Revenue"), "increase"),
    "active_customers": (_("Active customers"), "increase"),
    "new_customers": (_("New customers"), "increase"),
    "nps": (_("NPS"), "increase"),
    "csat": (_("CSAT"), "increase"),
    "ces": (_("CES"), "increase"),
}
