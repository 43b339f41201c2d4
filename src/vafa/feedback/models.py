"""Voice of the customer: surveys, invitations (signed single-use links), responses and the
follow-up tasks that close the loop.

Rows are written only by `vafa.feedback.services`. Texts shown to customers are stored per
language (`{"fa": …, "ar": …, "en": …}`) in JSON, so a merchant edits one survey, not three.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from vafa.customers.models import Channel, Customer

LANGUAGES = ("fa", "ar", "en")


class SurveyKind(models.TextChoices):
    NPS = "nps", _("NPS (0–10)")
    CSAT = "csat", _("CSAT (1–5)")
    CES = "ces", _("CES (1–7)")
    CUSTOM = "custom", _("Custom")


SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
"""Score range of each scored kind; a custom survey has no headline score."""


class QuestionType(models.TextChoices):
    CHOICE = "choice", _("Choice")
    SCALE = "scale", _("Scale")
    TEXT = "text", _("Text")
    MULTI = "multi", _("Several choices")


CHOICE_TYPES = frozenset({QuestionType.CHOICE, QuestionType.MULTI})

PROFILE_FIELDS: dict[str, frozenset[str]] = {
    "interests": CHOICE_TYPES,
    "reward_type": frozenset({QuestionType.CHOICE}),
    "channel": frozenset({QuestionType.CHOICE}),
}
"""Profile fields a question may fill (its `"profile"` key), with the question types that fit:
the answer lands on the customer's `CustomerPreference` when the survey is completed."""


def pick_language(texts: dict[str, Any] | None, language: str) -> str:
    """The text in `language`, else English, else any language present, else ""."""
    texts = texts or {}
    for key in (language, "en", *LANGUAGES):
        if texts.get(key):
            return str(texts[key])
    return ""


def questions_problems(questions: object) -> list[str]:
    """What is wrong with a survey's `questions` JSON (empty when it is fine)."""
    if not isinstance(questions, list):
        return [str(_("Questions must be a list."))]
    problems: list[str] = []
    seen: set[str] = set()
    for number, question in enumerate(questions, start=1):
        if not isinstance(question, dict) or not str(question.get("id", "")).strip():
            problems.append(str(_("Question %(n)s needs an id.") % {"n": number}))
            continue
        qid = str(question["id"])
        if qid in seen or qid in {"score", "csrfmiddlewaretoken"}:
            problems.append(str(_("Question id %(id)s is used twice or reserved.") % {"id": qid}))
        seen.add(qid)
        kind = question.get("type")
        if kind not in QuestionType.values:
            problems.append(str(_("Question %(id)s has an unknown type.") % {"id": qid}))
        if not isinstance(question.get("label"), dict) or not question["label"]:
            problems.append(str(_("Question %(id)s needs a label.") % {"id": qid}))
        profile = question.get("profile")
        if profile is not None and kind not in PROFILE_FIELDS.get(str(profile), ()):
            problems.append(
                str(_("Question %(id)s cannot fill the profile field %(field)s.")
                    % {"id": qid, "field": profile})
            )
        if kind in CHOICE_TYPES and not (
            isinstance(question.get("choices"), list) and question["choices"]
            and all(isinstance(c, dict) and "value" in c for c in question["choices"])
        ):
            problems.append(str(_("Question %(id)s needs choices.") % {"id": qid}))
        if kind == QuestionType.SCALE:
            try:
                low, high = int(question.get("min", 1)), int(question.get("max", 5))
            except (TypeError, ValueError):
                low, high = 1, 0
            if not 0 <= low < high <= 100:
                problems.append(str(_("Question %(id)s needs a range.") % {"id": qid}))
    return problems


class Survey(models.Model):
    """A questionnaire. Scored kinds ask one headline question (`prompt`, answered in one click
    from the message) then `questions`; a custom survey has only `questions`.

    `questions` is a list of `{"id", "type": choice|multi|scale|text, "label": {lang: text},
    "required": bool, "choices": [{"value", "label": {lang: text}}], "min", "max",
    "profile": interests|reward_type|channel}` (`profile`: see `PROFILE_FIELDS`).
    """

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=SurveyKind.choices)
    title = models.JSONField(_("title"), default=dict, help_text=_("Per language: fa, ar, en."))
    prompt = models.JSONField(_("question"), default=dict, blank=True)
    low_label = models.JSONField(_("low end label"), default=dict, blank=True)
    high_label = models.JSONField(_("high end label"), default=dict, blank=True)
    questions = models.JSONField(_("further questions"), default=list, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        """Refuse a questions list the survey page could not show (edited by hand in the
        admin): each needs a unique id, a known type, a label, choices for a choice question
        and a sane range for a scale."""
        problems = questions_problems(self.questions)
        if self.kind != SurveyKind.CUSTOM and not self.prompt:
            problems.append(str(_("A scored survey needs its question.")))
        if problems:
            raise DjangoValidationError({"questions": problems})

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCALES.get(self.kind)


class Trigger(models.TextChoices):
    API = "api", _("API")
    DELIVERY = "delivery", _("After delivery")
    TICKET = "ticket", _("After a resolved ticket")
    RELATIONSHIP = "relationship", _("Periodic relationship survey")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
    DELETION = "deletion", _("Account deleted")
    LAPSED = "lapsed", _("Stopped buying")
    MANUAL = "manual", _("Manual")


EXIT_TRIGGERS = frozenset({Trigger.UNSUBSCRIBE, Trigger.DELETION, Trigger.LAPSED})
EXIT_SURVEY = "exit"
"""Slug of the built-in exit survey ("why did you leave?")."""


class SurveyInvitation(models.Model):
    """One customer asked one survey once. The link carries `token` signed with the site's key;
    the row decides expiry and single use, so a link can be revoked or checked in SQL."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="survey_invitations",
        verbose_name=_("customer"),
    )
    survey = models.ForeignKey(
        Survey, on_delete=models.PROTECT, related_name="invitations", verbose_name=_("survey")
    )
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    reference = models.CharField(
        _("reference"), max_length=100, blank=True,
        help_text=_("What the survey is about, e.g. order:12; one invitation per reference."),
    )
    token = models.CharField(_("token"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=now, db_index=True)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    reward_granted_at = models.DateTimeField(_("reward granted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="fb_invitation_customer_time")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "survey", "reference"], condition=~Q(reference=""),
                name="fb_one_invitation_per_reference",
            )
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}→{self.customer_id}@{self.created_at:%Y-%m-%d}"


class SurveyResponse(models.Model):
    """The answer to one invitation: the one-click score first, the rest when submitted."""

    invitation = models.OneToOneField(
        SurveyInvitation, on_delete=models.CASCADE, related_name="response",
        verbose_name=_("invitation"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="survey_responses",
        verbose_name=_("customer"),
    )
    survey = models.ForeignKey(
        Survey, on_delete=models.PROTECT, related_name="responses", verbose_name=_("survey")
    )
    score = models.PositiveSmallIntegerField(_("score"), null=True, blank=True)
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    text = models.TextField(_("comment"), blank=True)
    text_normalized = models.TextField(_("normalised comment"), blank=True, editable=False)
    language = models.CharField(_("language"), max_length=10, blank=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    answered_at = models.DateTimeField(_("answered at"), db_index=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        ordering = ["-answered_at"]
        indexes = [
            models.Index(fields=["customer", "answered_at"], name="fb_response_customer_time")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__lte=10), name="fb_score_at_most_10"
            )
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}:{self.customer_id}={self.score}"


class TaskKind(models.TextChoices):
    RECOVERY = "recovery", _("Call back an unhappy customer")
    REVIEW_ASK = "review_ask", _("Ask a promoter for a review or referral")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")


class FollowUpTask(models.Model):
    """Work for the team opened by an answer: call back a detractor, ask a promoter."""

    response = models.ForeignKey(
        SurveyResponse, on_delete=models.CASCADE, related_name="tasks",
        verbose_name=_("response"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="follow_up_tasks",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=TaskKind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", verbose_name=_("assignee"),
    )
    notes = models.TextField(_("notes"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("follow-up task")
        verbose_name_plural = _("follow-up tasks")
        ordering = ["status", "due_at"]
        constraints = [
            models.UniqueConstraint(fields=["response", "kind"], name="fb_one_task_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.customer_id}"


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for moderation")
    PUBLISHED = "published", _("Published")
    REJECTED = "rejected", _("Rejected")


def review_photo_path(review: Review, filename: str) -> str:
    """Where a review photo is stored: a random name (never the customer's file name) with the
    extension the content was recognised as."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"reviews/{now():%Y/%m}/{secrets.token_hex(12)}.{extension}"


class Review(models.Model):
    """A verified buyer's review of a product. Moderation is about abuse, not about stars:
    negative reviews are published too, with the merchant's reply beside them."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="reviews", verbose_name=_("customer")
    )
    product = models.ForeignKey(
        "customers.Product", on_delete=models.CASCADE, related_name="reviews",
        verbose_name=_("product"),
    )
    order = models.ForeignKey(
        "customers.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("order"),
    )
    stars = models.PositiveSmallIntegerField(_("stars"))
    text = models.TextField(_("text"), blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reply = models.TextField(_("merchant's reply"), blank=True)
    replied_at = models.DateTimeField(_("replied at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=now, editable=False)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    reward_granted_at = models.DateTimeField(_("reward granted at"), null=True, blank=True)
    photo = models.FileField(
        _("photo"), upload_to=review_photo_path, blank=True, max_length=200,
        help_text=_("JPEG, PNG or WebP, checked by content."),
    )

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "product"], name="fb_one_review_each"),
            models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5),
                                   name="fb_review_stars_1_5"),
        ]
        indexes = [models.Index(fields=["product", "status", "created_at"],
                                name="fb_review_product")]

    def __str__(self) -> str:
        return f"{self.product_id}:{self.stars}★"


class RewardPreference(models.TextChoices):
    """The kind of reward a customer says they like best (a birthday gift follows it)."""

    POINTS = "points", _("Points")
    DISCOUNT = "discount", _("Discount code")
    FREE_SHIPPING = "free_shipping", _("Free shipping")
    GIFT = "gift", _("Gift")


class CustomerPreference(models.Model):
    """What a customer told us they like: interests (topic or category codes), the reward they
    prefer and the channel they want to hear from us on. Filled by survey questions marked with
    a `profile` field, or by staff; read through `selectors.customer_preferences`."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="preference", verbose_name=_("customer")
    )
    interests = models.JSONField(_("interests"), default=list, blank=True)
    reward_type = models.CharField(
        _("preferred reward"), max_length=20, choices=RewardPreference.choices, blank=True
    )
    channel = models.CharField(
        _("preferred channel"), max_length=20, choices=Channel.choices, blank=True
    )
    source = models.CharField(
        _("source"), max_length=100, blank=True,
        help_text=_("Where the last change came from, e.g. survey-response:12 or staff."),
    )
    updated_at = models.DateTimeField(_("updated at"), default=now)

    class Meta:
        verbose_name = _("customer preference")
        verbose_name_plural = _("customer preferences")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"{self.customer_id}: {', '.join(map(str, self.interests))}"
