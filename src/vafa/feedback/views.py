"""The survey page behind a signed link: one-click score on GET, the rest on POST.

Thin: find the invitation, speak the customer's language, call one service, render. Every
problem with the link gets its own plain page (404 forged, 410 expired or already answered) so
the customer knows what happened; nothing the customer typed is ever rendered unescaped.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from vafa.core.errors import ConflictError, ValidationError
from vafa.core.text import localize_digits, normalize_digits
from vafa.customers.models import Customer, Product
from vafa.feedback import conf, reviews, services
from vafa.feedback.errors import (
    AnswerInvalid,
    InvitationExpired,
    InvitationInvalid,
    InvitationUsed,
    ReviewNotAllowed,
)
from vafa.feedback.links import review_link_read
from vafa.feedback.models import (
    Review,
    ReviewStatus,
    SurveyInvitation,
    SurveyResponse,
    pick_language,
)
from vafa.feedback.selectors import customer_language, invitation_for_link


def _notice(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "feedback/notice.html", {"title": title, "message": message},
                  status=status)


def _link_problem(request: HttpRequest, error: Exception) -> HttpResponse:
    if isinstance(error, InvitationUsed):
        return _notice(request, 410, _("Already answered"),
                       _("You have already answered this survey. Thank you!"))
    if isinstance(error, InvitationExpired):
        return _notice(request, 410, _("Link expired"),
                       _("This survey link has expired. Thank you for your interest."))
    return _notice(request, 404, _("Invalid link"),
                   _("This survey link is not valid. Please use the link from your message."))


def _shown_value(question: dict[str, Any], raw: object) -> str | list[str]:
    """What to put back in a field after a refused submission: a list of ticked values for a
    several-choices question, the text otherwise."""
    if question.get("type") == "multi":
        given = raw if isinstance(raw, list) else [] if raw in (None, "") else [raw]
        return [str(item) for item in given]
    return "" if raw is None else str(raw)


def _form_context(
    invitation: SurveyInvitation, response: SurveyResponse | None, language: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    survey = invitation.survey
    scale = survey.scale
    questions = []
    for question in survey.questions:
        entry = {
            "id": str(question["id"]), "type": question.get("type"),
            "label": pick_language(question.get("label"), language),
            "required": bool(question.get("required")),
            "value": _shown_value(question, data.get(str(question["id"]))),
            "choices": [
                (str(c["value"]), pick_language(c.get("label"), language))
                for c in question.get("choices", [])
            ],
            "numbers": [
                (str(n), localize_digits(str(n), language))
                for n in range(int(question.get("min", 1)), int(question.get("max", 5)) + 1)
            ] if question.get("type") == "scale" else [],
        }
        questions.append(entry)
    return {
        "title": pick_language(survey.title, language),
        "prompt": pick_language(survey.prompt, language),
        "low_label": pick_language(survey.low_label, language),
        "high_label": pick_language(survey.high_label, language),
        "scores": [
            (str(n), localize_digits(str(n), language)) for n in range(scale[0], scale[1] + 1)
        ] if scale else [],
        "score": None if response is None or response.score is None
        else localize_digits(str(response.score), language),
        "questions": questions,
        "max_text": conf.MAX_TEXT,
    }


@require_http_methods(["GET", "POST"])
def survey_page(request: HttpRequest, signed: str) -> HttpResponse:
    """GET (`?score=N` records the one-click score) shows the form; POST saves the rest."""
    try:
        invitation = invitation_for_link(signed=signed)
    except InvitationInvalid as invalid:
        return _link_problem(request, invalid)
    language = customer_language(invitation.customer)
    with translation.override(language):
        request.LANGUAGE_CODE = language
        response = SurveyResponse.objects.filter(invitation=invitation).first()
        error: AnswerInvalid | None = None
        data: dict[str, Any] = {}
        try:
            if request.method == "POST":
                # Several-choices questions send one field per ticked box: keep them all.
                data = {key: values if len(values) > 1 else values[0]
                        for key, values in request.POST.lists()}
                try:
                    services.response_complete(invitation=invitation, data=data,
                                               language=language)
                except AnswerInvalid as problem:
                    error = problem
                else:
                    return render(request, "feedback/notice.html", {
                        "title": _("Thank you!"),
                        "message": _("Your answers were saved. Thank you for your time."),
                    })
            elif invitation.used_at is not None:
                raise InvitationUsed("used")
            elif invitation.expires_at <= timezone.now():
                raise InvitationExpired("expired")
            elif "score" in request.GET and (response is None or response.score is None):
                # A repeated click has nothing to record (the first click wins): skip the write.
                try:
                    response = services.response_score_record(
                        invitation=invitation, score=request.GET["score"], language=language
                    )
                except AnswerInvalid as problem:
                    error = problem
        except (InvitationUsed, InvitationExpired) as problem:
            return _link_problem(request, problem)
        context = _form_context(invitation, response, language, data)
        context["error"] = error
        return render(request, "feedback/survey.html", context, status=400 if error else 200)


def _review_error(problem: Exception) -> str:
    """What to tell the customer about a refused review, in their language."""
    if isinstance(problem, ReviewNotAllowed):
        return _("Only customers who bought this product can review it.")
    if isinstance(problem, ConflictError):
        return _("You have already reviewed this product. Thank you!")
    field = getattr(problem, "field", "")
    if field == "photo":
        return _("The photo must be a JPEG, PNG or WebP image of at most 5 MB.")
    if field == "stars":
        return _("Please choose from 1 to 5 stars.")
    return _("Your text is too long (at most %(max)s characters).") % {"max": conf.MAX_TEXT}


@require_http_methods(["GET", "POST"])
def review_page(request: HttpRequest, signed: str) -> HttpResponse:
    """The review form behind a signed review-request link: stars, text and an optional photo,
    sent to `reviews.review_submit` (verified buyers only, moderated before publication)."""
    ids = review_link_read(signed)
    customer = Customer.objects.filter(pk=ids[0]).first() if ids else None
    product = Product.objects.filter(pk=ids[1]).first() if ids else None
    if customer is None or product is None:
        return _notice(request, 404, _("Invalid link"),
                       _("This review link is not valid or has expired."))
    language = customer_language(customer)
    with translation.override(language):
        request.LANGUAGE_CODE = language
        error = ""
        stars_raw = text = ""
        if request.method == "POST":
            stars_raw = normalize_digits(request.POST.get("stars", "")).strip()
            text = request.POST.get("text", "")
            stars = int(stars_raw) if stars_raw.isascii() and stars_raw.isdigit() else 0
            try:
                reviews.review_submit(customer=customer, product=product, stars=stars,
                                      text=text, photo=request.FILES.get("photo"))
            except (ValidationError, ReviewNotAllowed, ConflictError) as problem:
                error = _review_error(problem)
            else:
                return render(request, "feedback/notice.html", {
                    "title": _("Thank you!"),
                    "message": _("Your review was received and will appear after a check."),
                })
        return render(request, "feedback/review.html", {
            "product_name": product.name,
            "stars": [(str(n), localize_digits(str(n), language)) for n in range(1, 6)],
            "chosen": stars_raw, "text": text, "error": error, "max_text": conf.MAX_TEXT,
        }, status=400 if error else 200)


@require_GET
def review_photo(request: HttpRequest, review_id: int) -> FileResponse:
    """A review's photo: public once the review is published, else only for staff (moderation).
    Served with the type its content was recognised as, never sniffed by the browser."""
    review = Review.objects.filter(pk=review_id).exclude(photo="").first()
    if review is None or (
        review.status != ReviewStatus.PUBLISHED and not request.user.is_staff
    ):
        raise Http404("no such photo")
    extension = str(review.photo.name).rsplit(".", 1)[-1]
    if extension not in reviews.PHOTO_TYPES:
        raise Http404("no such photo")
    response = FileResponse(review.photo.open("rb"),
                            content_type=reviews.PHOTO_TYPES[extension])
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-cache" if review.status != ReviewStatus.PUBLISHED \
        else "public, max-age=3600"
    return response
