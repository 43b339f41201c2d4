"""Product reviews: written by verified buyers, moderated for abuse (negative reviews are
published too), answered by the merchant, rewarded through the loyalty rules once published.

Services (writes) and the one read the shop's site needs; kept apart from the survey code
because reviews are public and surveys are private.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from vafa.core.errors import ConflictError, NotFoundError, ValidationError
from vafa.customers.models import PURCHASE_STATUSES, Customer, OrderLine, Product
from vafa.customers.selectors import MAX_PAGE, decode_cursor, encode_cursor
from vafa.feedback import conf
from vafa.feedback.errors import ReviewNotAllowed
from vafa.feedback.models import Review, ReviewStatus
from vafa.loyalty.services import points_award


def review_submit(
    *, customer: Customer, product: Product, stars: int, text: str = "",
    photo: File[Any] | None = None, now: datetime | None = None,
) -> Review:
    """A new review waiting for moderation, with an optional photo (see `review_photo_set`).
    Refused unless the customer has a paid (not fully refunded or cancelled) order containing
    the product; one review per customer and product. Nothing is stored when any part is
    refused."""
    now = now or timezone.now()
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
        raise ValidationError("stars must be a whole number from 1 to 5", field="stars")
    text = text.strip()
    if len(text) > conf.MAX_TEXT:
        raise ValidationError(f"the text is longer than {conf.MAX_TEXT} characters",
                              field="text")
    line = (
        OrderLine.objects.filter(order__customer=customer, product=product,
                                 order__status__in=PURCHASE_STATUSES)
        .select_related("order").order_by("-order__placed_at").first()
    )
    if line is None:
        raise ReviewNotAllowed("only customers who bought this product can review it",
                               field="product_id")
    try:
        with transaction.atomic():
            review = Review.objects.create(customer=customer, product=product,
                                           order=line.order, stars=stars, text=text,
                                           created_at=now)
            if photo is not None:
                review_photo_set(review=review, photo=photo)
            return review
    except IntegrityError:
        raise ConflictError("this customer already reviewed this product",
                            field="product_id") from None


PHOTO_TYPES: dict[str, str] = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def photo_kind(head: bytes) -> str | None:
    """The image type the first bytes announce (`jpg`, `png`, `webp`), or None.

    Decided by content, never by the file's name or the browser's claimed type: a script
    renamed `photo.jpg` is refused. (Pillow is not a dependency; the magic numbers of the three
    formats shops accept are enough to refuse anything else.)
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def review_photo_set(*, review: Review, photo: File[Any]) -> Review:
    """Attach (or replace) the review's photo, stored through Django's default storage under
    a random name. Refuses anything but a JPEG, PNG or WebP of at most `conf.MAX_PHOTO_BYTES`."""
    size = photo.size or 0
    if size > conf.MAX_PHOTO_BYTES:
        raise ValidationError(
            f"the photo is larger than {conf.MAX_PHOTO_BYTES // (1024 * 1024)} MB", field="photo"
        )
    photo.seek(0)
    head = photo.read(16)
    kind = photo_kind(head if isinstance(head, bytes) else b"")
    if kind is None:
        raise ValidationError("the photo must be a JPEG, PNG or WebP image", field="photo")
    photo.seek(0)
    previous = review.photo.name if review.photo else ""
    review.photo.save(f"photo.{kind}", photo, save=False)
    review.save(update_fields=["photo"])
    if previous:
        # Only once the new name is committed: a write rolled back (a concurrent retry losing
        # the idempotency race, say) must leave the review pointing at a file that exists.
        storage = review.photo.storage
        transaction.on_commit(lambda: storage.delete(previous))
    return review


def review_moderate(*, review: Review, publish: bool, now: datetime | None = None) -> Review:
    """Publish or reject. The first publication earns the `review` bonus (loyalty rules),
    once: the ledger key and `reward_granted_at` both guard it."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Review.objects.select_for_update().get(pk=review.pk)
        if publish:
            locked.status = ReviewStatus.PUBLISHED
            locked.published_at = locked.published_at or now
            if locked.reward_granted_at is None and points_award(
                customer=locked.customer_id, kind="review", reference=f"review:{locked.pk}",
                now=now,
            ) is not None:
                locked.reward_granted_at = now
        else:
            locked.status = ReviewStatus.REJECTED
        locked.save(update_fields=["status", "published_at", "reward_granted_at"])
        return locked


def review_reply(*, review: Review, text: str, now: datetime | None = None) -> Review:
    """The merchant's public answer (replaces an earlier one)."""
    text = text.strip()
    if not text or len(text) > conf.MAX_TEXT:
        raise ValidationError(f"a reply has 1 to {conf.MAX_TEXT} characters", field="reply")
    review.reply = text
    review.replied_at = now or timezone.now()
    review.save(update_fields=["reply", "replied_at"])
    return review


def reviews_published(
    *, product_external_id: str, cursor: str | None = None, limit: int = 20
) -> tuple[list[Review], str | None]:
    """A product's published reviews, newest first, a page at a time."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    product = Product.objects.filter(external_id=product_external_id).first()
    if product is None:
        raise NotFoundError(f"no product {product_external_id!r}", field="product_id")
    queryset: QuerySet[Review] = Review.objects.filter(
        product=product, status=ReviewStatus.PUBLISHED
    ).select_related("customer").order_by("-id")
    if cursor:
        queryset = queryset.filter(id__lt=decode_cursor(cursor))
    rows = list(queryset[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor
