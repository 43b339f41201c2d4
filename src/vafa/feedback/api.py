"""REST endpoints for surveys: create an invitation (its signed link), list a customer's answers.

Thin: parse, authorise, call a service or selector. Writes need an `Idempotency-Key`; a retried
request gets the same link back instead of a second invitation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Field, File, Query, Router, Schema, UploadedFile
from pydantic import ConfigDict

from vafa.core.auth import ApiKeyAuth, request_api_key
from vafa.core.errors import NotFoundError
from vafa.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from vafa.core.idempotency import idempotent_response
from vafa.customers.models import Customer, Product
from vafa.customers.selectors import MAX_PAGE
from vafa.feedback import conf, reviews, selectors, services
from vafa.feedback.links import survey_url
from vafa.feedback.models import Review, SurveyResponse, Trigger

router = Router(auth=ApiKeyAuth(), tags=["surveys"])


class InvitationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    customer_id: str | int = Field(..., description="An existing customer's id.")
    survey: str = Field(..., description="nps, csat, ces or a custom survey's slug.")
    channel: str = Field("", max_length=20, description="How it will be sent (email, sms…).")


class InvitationOut(Schema):
    url: str = Field(..., description="The signed link; add ?score=N for a one-click answer.")
    expires_at: datetime


class ResponseOut(Schema):
    customer_id: str
    survey: str
    kind: str
    score: int | None
    answers: dict[str, Any]
    text: str
    channel: str
    language: str
    answered_at: datetime
    completed_at: datetime | None


class ResponsePage(Schema):
    items: list[ResponseOut]
    next_cursor: str | None


class ResponsesQuery(Schema):
    customer_id: str
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=MAX_PAGE)


@router.post("/survey-invitations", response={201: InvitationOut},
             summary="Invite a customer to a survey")
def invitation_create(request: HttpRequest, payload: InvitationIn) -> HttpResponse:
    """Creates an invitation and returns its signed, single-use link (valid 30 days by
    default). Sending it is up to you or to Vafa's messaging."""
    api_key = request_api_key(request)
    external_id = str(payload.customer_id).strip()

    def perform() -> tuple[int, dict[str, Any]]:
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise NotFoundError(f"no customer {external_id!r}", field="customer_id")
        survey = selectors.survey_get(slug=payload.survey.strip().lower())
        invitation = services.invitation_create(
            customer=customer, survey=survey, channel=payload.channel, trigger=Trigger.API
        )
        return 201, {"url": survey_url(invitation.token),
                     "expires_at": invitation.expires_at.isoformat()}

    return idempotent_response(request, api_key=api_key, perform=perform)


def _response_out(response: SurveyResponse, external_id: str) -> dict[str, Any]:
    return {
        "customer_id": external_id, "survey": response.survey.slug,
        "kind": response.survey.kind, "score": response.score, "answers": response.answers,
        "text": response.text, "channel": response.channel, "language": response.language,
        "answered_at": response.answered_at, "completed_at": response.completed_at,
    }


@router.get("/survey-responses", response=ResponsePage, summary="A customer's survey answers")
def responses_list(request: HttpRequest, query: Query[ResponsesQuery]) -> dict[str, Any]:
    """Answers in the order given; pass `next_cursor` back as `cursor` for the next page.
    `text` is the customer's raw text: escape it when you display it."""
    rows, next_cursor = selectors.responses_page(
        customer_external_id=query.customer_id, cursor=query.cursor, limit=query.limit
    )
    return {"items": [_response_out(r, query.customer_id) for r in rows],
            "next_cursor": next_cursor}


class ReviewIn(Schema):
    model_config = ConfigDict(extra="forbid")

    customer_id: str | int
    product_id: str | int
    stars: int = Field(..., description="1 to 5.")
    text: str = Field("", description="Plain text; stored as typed, escape it when shown.")


class ReviewCreated(Schema):
    id: int
    status: str


class ReviewOut(Schema):
    id: int
    author: str = Field(..., description="First name and last initial only.")
    stars: int
    text: str
    reply: str
    replied_at: datetime | None
    published_at: datetime | None
    verified_buyer: bool
    photo_url: str | None = Field(None, description="The customer's photo, when they added one.")


class ReviewPage(Schema):
    items: list[ReviewOut]
    next_cursor: str | None


class ReviewsQuery(Schema):
    product_id: str
    cursor: str | None = None
    limit: int = Field(20, ge=1, le=MAX_PAGE)


@router.post("/reviews", response={201: ReviewCreated}, summary="Submit a product review")
def review_create(request: HttpRequest, payload: ReviewIn) -> HttpResponse:
    """A review from a verified buyer (403 otherwise), published after moderation."""
    api_key = request_api_key(request)

    def perform() -> tuple[int, dict[str, Any]]:
        customer = Customer.objects.filter(external_id=str(payload.customer_id).strip()).first()
        if customer is None:
            raise NotFoundError("no such customer", field="customer_id")
        product = Product.objects.filter(external_id=str(payload.product_id).strip()).first()
        if product is None:
            raise NotFoundError("no such product", field="product_id")
        review = reviews.review_submit(customer=customer, product=product, stars=payload.stars,
                                       text=payload.text)
        return 201, {"id": review.pk, "status": review.status}

    return idempotent_response(request, api_key=api_key, perform=perform)


def _photo_url(review: Review) -> str | None:
    if not review.photo:
        return None
    return f"{conf.base_url()}{reverse('feedback:review_photo', args=[review.pk])}"


def _review_out(review: Review) -> dict[str, Any]:
    customer = review.customer
    initial = f" {customer.last_name[:1]}." if customer.last_name else ""
    return {
        "id": review.pk, "author": f"{customer.first_name}{initial}".strip(),
        "stars": review.stars, "text": review.text, "reply": review.reply,
        "replied_at": review.replied_at, "published_at": review.published_at,
        "verified_buyer": review.order_id is not None,
        "photo_url": _photo_url(review),
    }


@router.get("/reviews", response=ReviewPage, summary="A product's published reviews")
def reviews_list(request: HttpRequest, query: Query[ReviewsQuery]) -> dict[str, Any]:
    """Published reviews, newest first, good and bad alike, with the merchant's reply."""
    rows, next_cursor = reviews.reviews_published(
        product_external_id=query.product_id, cursor=query.cursor, limit=query.limit
    )
    return {"items": [_review_out(r) for r in rows], "next_cursor": next_cursor}


class PhotoAttached(Schema):
    id: int
    photo_url: str


@router.post("/reviews/{review_id}/photo", response={200: PhotoAttached},
             summary="Attach a photo to a review")
def review_photo_upload(
    request: HttpRequest, review_id: int, photo: File[UploadedFile]
) -> dict[str, Any] | HttpResponse:
    """Multipart upload (field `photo`): a JPEG, PNG or WebP of at most 5 MB, checked by
    content. Replaces an earlier photo; shown once the review is published.

    With an `Idempotency-Key` a retry replays the first answer (the key is matched to the same
    file by its content) and never replaces a photo set since; without one, sending the same
    photo again still leaves the review as it was."""
    api_key = request_api_key(request)

    def perform() -> tuple[int, dict[str, Any]]:
        review = Review.objects.filter(pk=review_id).first()
        if review is None:
            raise NotFoundError("no such review", field="review_id")
        reviews.review_photo_set(review=review, photo=photo)
        return 200, {"id": review.pk, "photo_url": _photo_url(review) or ""}

    if request.headers.get(IDEMPOTENCY_HEADER, "").strip():
        return idempotent_response(request, api_key=api_key, perform=perform)
    return perform()[1]
