"""What Vafa knows about a shop: customers, their consent, products, orders, events, tickets.

Rows are written only by `vafa.customers.services` (and the importers, which are services too).
Money is `DecimalField` with its currency beside it; times are aware and stored in UTC.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


def money_field(verbose_name: Any, **kwargs: Any) -> models.DecimalField[Any, Any]:
    """A money column: enough digits for Rial totals (billions) and three decimal places for
    KWD/BHD-style currencies. The currency is always stored beside it."""
    return models.DecimalField(verbose_name, max_digits=20, decimal_places=3, **kwargs)


class Gender(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "", _("Unknown")


class Channel(models.TextChoices):
    """Channels a customer can consent to be contacted on."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Web push")
    TELEGRAM = "telegram", _("Telegram")


class Customer(models.Model):
    external_id = models.CharField(_("customer ID"), max_length=100, unique=True)
    email = models.EmailField(_("email"), blank=True, db_index=True)
    phone = models.CharField(_("phone (E.164)"), max_length=20, blank=True, db_index=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True, db_index=True)
    country = models.CharField(_("country"), max_length=2, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    timezone = models.CharField(_("time zone"), max_length=64, blank=True)
    signup_at = models.DateTimeField(_("signed up at"), null=True, blank=True, db_index=True)
    acquisition_source = models.CharField(
        _("acquisition source"), max_length=100, blank=True, db_index=True
    )
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.external_id

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Consent(models.Model):
    """The current consent of one customer on one channel, with when and where it was given."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    granted = models.BooleanField(_("granted"))
    changed_at = models.DateTimeField(_("changed at"), default=now)
    source = models.CharField(
        _("source"), max_length=100, help_text=_("Where the consent was given, e.g. import, checkout")
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="uniq_consent_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.channel}={'yes' if self.granted else 'no'}"


class Category(models.Model):
    name = models.CharField(_("name"), max_length=200, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
        verbose_name=_("parent"),
    )

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    external_id = models.CharField(_("product ID"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=300)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products",
        verbose_name=_("category"),
    )
    price = money_field(_("price"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    recent_buyers = models.PositiveIntegerField(
        _("buyers in the last 30 days"), default=0, db_default=0,
        help_text=_("Refreshed nightly; the social proof of messages."),
    )
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProductSimilarity(models.Model):
    """"Customers who bought `product` also bought `similar`": the cosine of their buyers, from
    `vafa.analytics.recommend`, refreshed nightly by `vafa.customers.recommendations`."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="similar",
                                verbose_name=_("product"))
    similar = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("similar product"))
    score = models.FloatField(_("similarity"))
    co_buyers = models.PositiveIntegerField(_("customers who bought both"))

    class Meta:
        verbose_name = _("similar product")
        verbose_name_plural = _("similar products")
        constraints = [
            models.UniqueConstraint(fields=["product", "similar"], name="similarity_pair_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} → {self.similar_id} ({self.score:.2f})"


class OrderStatus(models.TextChoices):
    PAID = "paid", _("Paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")
    PENDING = "pending", _("Pending payment")


# The statuses that count as a purchase (refunded in part still is; refunded or cancelled is not).
PURCHASE_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)


class FulfillmentStatus(models.TextChoices):
    """Where the parcel is, apart from the payment (`OrderStatus`): shops report "shipped" or
    "delivered" as an order status, and both are still paid orders."""

    UNFULFILLED = "", _("Not shipped yet")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")


class Order(models.Model):
    external_id = models.CharField(_("order ID"), max_length=100, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer")
    )
    placed_at = models.DateTimeField(_("placed at"))
    status = models.CharField(_("status"), max_length=20, choices=OrderStatus.choices)
    total = money_field(_("total"))
    discount = money_field(_("discount"), default=0)
    shipping = money_field(_("shipping"), default=0)
    refunded_amount = money_field(_("refunded amount"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    channel = models.CharField(_("sales channel"), max_length=50, blank=True)
    fulfillment_status = models.CharField(
        _("fulfilment"), max_length=20, choices=FulfillmentStatus.choices, blank=True,
        db_default="",
    )
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at"]
        indexes = [
            # Per-customer history and the analytics aggregation read orders in this order.
            models.Index(fields=["customer", "placed_at"], name="order_customer_time"),
            models.Index(fields=["placed_at"], name="order_time"),
            models.Index(fields=["status", "placed_at"], name="order_status_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(condition=Q(discount__gte=0), name="order_discount_not_negative"),
            models.CheckConstraint(condition=Q(shipping__gte=0), name="order_shipping_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("total")),
                name="order_refund_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="order_lines", verbose_name=_("product")
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = money_field(_("unit price"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="uniq_order_line_no"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
        ]
        indexes = [models.Index(fields=["product"], name="line_product")]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.line_no}"


class EventType(models.TextChoices):
    PRODUCT_VIEW = "product_view", _("Product view")
    PAGE_VIEW = "page_view", _("Page view")
    ADD_TO_CART = "add_to_cart", _("Add to cart")
    REMOVE_FROM_CART = "remove_from_cart", _("Remove from cart")
    CHECKOUT_STARTED = "checkout_started", _("Checkout started")
    SEARCH = "search", _("Search")


class Event(models.Model):
    """Something a customer did on the site or app. `type` is free text: the known ones above are
    suggestions, a shop may send its own (`custom:…` or any slug)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", verbose_name=_("customer")
    )
    type = models.CharField(_("type"), max_length=64)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    received_at = models.DateTimeField(_("received at"), default=now, editable=False)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time"),
            models.Index(fields=["type", "occurred_at"], name="event_type_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type}@{self.occurred_at:%Y-%m-%d %H:%M}"


class Ticket(models.Model):
    """A support ticket or chat: how fast it was answered and resolved, and how it was rated."""

    external_id = models.CharField(_("ticket ID"), max_length=100, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="tickets", verbose_name=_("customer")
    )
    opened_at = models.DateTimeField(_("opened at"))
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=50, blank=True)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction (1–5)"), null=True, blank=True)

    class Meta:
        verbose_name = _("support ticket")
        verbose_name_plural = _("support tickets")
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["customer", "opened_at"], name="ticket_customer_time")]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="ticket_satisfaction_1_5",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class ChangeKind(models.TextChoices):
    CUSTOMER_CREATED = "customer_created", _("Customer created")
    ORDER_CREATED = "order_created", _("Order created")
    ORDER_STATUS_CHANGED = "order_status_changed", _("Order status changed")


class Change(models.Model):
    """One change of the shop's data that something may react to (a welcome mail, a thank-you,
    points), written in the same transaction as the change itself: the durable seam between
    shop data and everything downstream. Append-only; consumers read it in `id` order through
    `vafa.customers.changes`, each with its own cursor. `old_*`/`new_*` hold the payment status
    and the fulfilment before and after (empty "old" values on creation)."""

    kind = models.CharField(_("kind"), max_length=30, choices=ChangeKind.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        verbose_name=_("order"),
    )
    old_status = models.CharField(_("old status"), max_length=20, blank=True)
    new_status = models.CharField(_("new status"), max_length=20, blank=True)
    old_fulfillment = models.CharField(_("old fulfilment"), max_length=20, blank=True)
    new_fulfillment = models.CharField(_("new fulfilment"), max_length=20, blank=True)
    source = models.CharField(_("source"), max_length=120)
    created_at = models.DateTimeField(_("recorded at"), default=now)

    class Meta:
        verbose_name = _("data change")
        verbose_name_plural = _("data changes")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} ({self.source})"


class ChangeCursor(models.Model):
    """How far one consumer of the change feed got: the last `Change.id` it handled. A row that
    keeps failing is retried `failures` times, then skipped (and logged)."""

    consumer = models.CharField(_("consumer"), max_length=100, unique=True)
    last_id = models.BigIntegerField(_("last change handled"), default=0)
    failing_id = models.BigIntegerField(_("failing change"), null=True, blank=True)
    failures = models.PositiveIntegerField(_("failures"), default=0)
    updated_at = models.DateTimeField(_("updated at"), default=now)

    class Meta:
        verbose_name = _("change feed cursor")
        verbose_name_plural = _("change feed cursors")

    def __str__(self) -> str:
        return f"{self.consumer}@{self.last_id}"
