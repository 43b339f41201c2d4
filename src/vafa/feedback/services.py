"""Writes of the feedback app: invitations, answers, rewards and follow-up tasks.

An answer arrives in two steps: the one-click score from the message (`response_score_record`,
idempotent: the first click wins) and the rest of the form (`response_complete`, once: it uses
the link up and grants the reward). Both lock the invitation row, so two clicks or two
submissions racing each other are serialised by the database, not by luck.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from vafa.core.text import normalize_digits
from vafa.customers.models import Channel, Customer, Event, Order, OrderStatus, Ticket
from vafa.feedback import conf
from vafa.feedback.errors import AnswerInvalid, InvitationExpired, InvitationUsed
from vafa.feedback.links import survey_url
from vafa.feedback.models import (
    EXIT_SURVEY,
    EXIT_TRIGGERS,
    PROFILE_FIELDS,
    CustomerPreference,
    FollowUpTask,
    QuestionType,
    RewardPreference,
    Survey,
    SurveyInvitation,
    SurveyKind,
    SurveyResponse,
    TaskKind,
    Trigger,
)
from vafa.feedback.text import normalize_feedback_text
from vafa.loyalty.services import points_award
from vafa.messaging.models import Suppression, SuppressionReason

CATCH_UP_DAYS = 7
"""Triggers look back this far for deliveries and resolved tickets, so a missed daily run is
caught up but switching the feature on does not survey a shop's whole history."""
RECOVERY_DUE = timedelta(days=2)
REVIEW_ASK_DUE = timedelta(days=7)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else timezone.now()


def invitation_create(
    *,
    customer: Customer | int,
    survey: Survey,
    channel: str = "",
    trigger: str = Trigger.API,
    reference: str = "",
    now: datetime | None = None,
) -> SurveyInvitation:
    """A new invitation with a fresh random token, valid for `conf.invitation_days()`."""
    now = _now(now)
    customer_id = customer if isinstance(customer, int) else customer.pk
    return SurveyInvitation.objects.create(
        customer_id=customer_id, survey=survey, channel=channel[:20], trigger=trigger,
        reference=reference, token=secrets.token_urlsafe(24), created_at=now,
        expires_at=now + timedelta(days=conf.invitation_days()),
    )


def parse_score(survey: Survey, raw: object) -> int:
    """A score from a link or a form ("9", "۹", 9), checked against the survey's scale."""
    scale = survey.scale
    if scale is None:
        raise AnswerInvalid(gettext("This survey has no score."), field="score")
    low, high = scale
    text = normalize_digits(str(raw)).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 3 or not low <= int(text) <= high:
        raise AnswerInvalid(
            gettext("Please choose a score from %(low)s to %(high)s.") % {"low": low, "high": high},
            field="score",
        )
    return int(text)


def parse_answers(survey: Survey, data: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The further answers as `{question id: value}` and the free text joined for analysis.

    Unknown fields are ignored (a form carries a CSRF token); a value that does not fit its
    question, or a text longer than `conf.MAX_TEXT`, is refused as a whole.
    """
    answers: dict[str, Any] = {}
    texts: list[str] = []
    for question in survey.questions:
        qid = str(question["id"])
        raw = data.get(qid)
        kind = question.get("type")
        if kind == QuestionType.MULTI:
            picked = _multi_values(question, raw)
            if picked:
                answers[qid] = picked
            elif question.get("required"):
                raise AnswerInvalid(gettext("Please answer this question."), field=qid)
            continue
        value = "" if raw is None else str(raw).strip()
        if not value:
            if question.get("required"):
                raise AnswerInvalid(gettext("Please answer this question."), field=qid)
            continue
        if kind == QuestionType.TEXT:
            if len(value) > conf.MAX_TEXT:
                raise AnswerInvalid(
                    gettext("Your text is too long (at most %(max)s characters).")
                    % {"max": conf.MAX_TEXT},
                    field=qid,
                )
            answers[qid] = value
            texts.append(value)
        elif kind == QuestionType.CHOICE:
            allowed = {str(choice["value"]) for choice in question.get("choices", [])}
            if value not in allowed:
                raise AnswerInvalid(gettext("Please pick one of the choices."), field=qid)
            answers[qid] = value
        elif kind == QuestionType.SCALE:
            low, high = int(question.get("min", 1)), int(question.get("max", 5))
            number = normalize_digits(value)
            if not number.isdigit() or not low <= int(number) <= high:
                raise AnswerInvalid(
                    gettext("Please choose a number from %(low)s to %(high)s.")
                    % {"low": low, "high": high},
                    field=qid,
                )
            answers[qid] = int(number)
    return answers, "\n".join(texts)


def _multi_values(question: Mapping[str, Any], raw: object) -> list[str]:
    """The picked values of a several-choices question, in the survey's order, each once.
    A form sends a list; an API client may send one value or a list."""
    given = raw if isinstance(raw, list | tuple) else [] if raw is None else [raw]
    picked = {str(item).strip() for item in given} - {""}
    allowed = [str(choice["value"]) for choice in question.get("choices", [])]
    if picked - set(allowed):
        raise AnswerInvalid(gettext("Please pick one of the choices."), field=str(question["id"]))
    return [value for value in allowed if value in picked]


def _check_open(invitation: SurveyInvitation, now: datetime) -> None:
    if invitation.used_at is not None:
        raise InvitationUsed("this survey was already answered; thank you")
    if invitation.expires_at <= now:
        raise InvitationExpired("this survey link has expired")


def _open_tasks(response: SurveyResponse, now: datetime) -> None:
    """Close the loop: a detractor (NPS 0–6, CSAT 1–2) gets a call back, a promoter (NPS 9–10)
    is asked for a review or a referral."""
    kind, score = response.survey.kind, response.score
    if score is None:
        return
    task: tuple[str, timedelta] | None = None
    if (kind == SurveyKind.NPS and score <= 6) or (kind == SurveyKind.CSAT and score <= 2):
        task = (TaskKind.RECOVERY, RECOVERY_DUE)
    elif kind == SurveyKind.NPS and score >= 9:
        task = (TaskKind.REVIEW_ASK, REVIEW_ASK_DUE)
    if task is not None:
        FollowUpTask.objects.get_or_create(
            response=response, kind=task[0],
            defaults={"customer_id": response.customer_id, "due_at": now + task[1]},
        )


def response_score_record(
    *, invitation: SurveyInvitation, score: object, language: str = "",
    now: datetime | None = None,
) -> SurveyResponse:
    """Record the one-click score. The first click wins: a second click (or a different score)
    changes nothing and returns the stored response."""
    now = _now(now)
    with transaction.atomic():
        locked = SurveyInvitation.objects.select_for_update().select_related("survey").get(
            pk=invitation.pk
        )
        existing = SurveyResponse.objects.filter(invitation=locked).first()
        if existing is not None and existing.score is not None:
            return existing
        _check_open(locked, now)
        value = parse_score(locked.survey, score)
        if existing is None:
            response = SurveyResponse.objects.create(
                invitation=locked, customer_id=locked.customer_id, survey=locked.survey,
                score=value, language=language, channel=locked.channel, answered_at=now,
            )
        else:
            response = existing
            response.score = value
            response.save(update_fields=["score"])
        _open_tasks(response, now)
        return response


def response_complete(
    *, invitation: SurveyInvitation, data: Mapping[str, Any], language: str = "",
    now: datetime | None = None,
) -> SurveyResponse:
    """Save the rest of the survey, use the link up and grant the answering reward once.

    `data` holds the form fields (question ids, and `score` when it was not clicked before).
    Raises `InvitationUsed` for a second submission: nothing is changed and no reward given.
    """
    now = _now(now)
    with transaction.atomic():
        locked = SurveyInvitation.objects.select_for_update().select_related("survey").get(
            pk=invitation.pk
        )
        _check_open(locked, now)
        survey = locked.survey
        response = SurveyResponse.objects.filter(invitation=locked).first()
        score: int | None = response.score if response is not None else None
        if score is None and survey.scale is not None:
            if data.get("score") in (None, ""):
                raise AnswerInvalid(gettext("Please choose a score."), field="score")
            score = parse_score(survey, data.get("score"))
        answers, text = parse_answers(survey, data)
        if response is None:
            response = SurveyResponse(
                invitation=locked, customer_id=locked.customer_id, survey=survey,
                channel=locked.channel, answered_at=now,
            )
        response.score = score
        response.answers = answers
        response.text = text
        response.text_normalized = normalize_feedback_text(text)
        response.language = language or response.language
        response.completed_at = now
        response.save()
        _open_tasks(response, now)
        if text:
            FollowUpTask.objects.filter(response=response, kind=TaskKind.RECOVERY).update(
                notes=text[:1000]
            )
        _profile_apply(response, now)
        locked.used_at = now
        if locked.reward_granted_at is None:
            entry = points_award(
                customer=locked.customer_id, kind="survey",
                reference=f"survey-invitation:{locked.pk}", now=now,
            )
            if entry is not None:
                locked.reward_granted_at = now
        locked.save(update_fields=["used_at", "reward_granted_at"])
        return response


def _profile_apply(response: SurveyResponse, now: datetime) -> None:
    """Copy answers to questions marked with a `profile` field onto the customer's
    preferences; an unanswered question leaves the stored value alone."""
    changes: dict[str, Any] = {}
    for question in response.survey.questions:
        field = question.get("profile")
        value = response.answers.get(str(question["id"]))
        if field not in PROFILE_FIELDS or value in (None, "", []):
            continue
        if field == "interests":
            changes["interests"] = value if isinstance(value, list) else [value]
        else:
            changes[field] = str(value)
    if changes:
        customer_preference_update(
            customer=response.customer_id, source=f"survey-response:{response.pk}", now=now,
            **changes,
        )


MAX_INTERESTS = 30


def customer_preference_update(
    *,
    customer: Customer | int,
    interests: Sequence[str] | None = None,
    reward_type: str | None = None,
    channel: str | None = None,
    source: str = "",
    now: datetime | None = None,
) -> CustomerPreference:
    """Set what the customer likes; a field left as None keeps its stored value, "" (or [])
    clears it. Interests are short codes (a topic or category), kept in the order given,
    each once. Refuses an unknown reward type or channel."""
    now = _now(now)
    if reward_type is not None and reward_type not in {"", *RewardPreference.values}:
        raise AnswerInvalid(f"unknown reward type {reward_type!r}", field="reward_type")
    if channel is not None and channel not in {"", *Channel.values}:
        raise AnswerInvalid(f"unknown channel {channel!r}", field="channel")
    cleaned: list[str] | None = None
    if interests is not None:
        if isinstance(interests, str):
            raise AnswerInvalid("interests must be a list", field="interests")
        cleaned = list(dict.fromkeys(str(i).strip() for i in interests if str(i).strip()))
        if len(cleaned) > MAX_INTERESTS or any(len(i) > 100 for i in cleaned):
            raise AnswerInvalid(
                f"at most {MAX_INTERESTS} interests of up to 100 characters", field="interests"
            )
    customer_id = customer if isinstance(customer, int) else customer.pk
    with transaction.atomic():
        preference, _created = CustomerPreference.objects.select_for_update().get_or_create(
            customer_id=customer_id, defaults={"updated_at": now}
        )
        if cleaned is not None:
            preference.interests = cleaned
        if reward_type is not None:
            preference.reward_type = reward_type
        if channel is not None:
            preference.channel = channel
        preference.source = source[:100]
        preference.updated_at = now
        preference.save()
    return preference


def exit_invitation_create(
    *, customer: Customer | int, trigger: str, channel: str = "", now: datetime | None = None
) -> SurveyInvitation | None:
    """Ask a leaving customer why (`trigger`: unsubscribe or deletion; lapsed customers are
    found by `survey_invitations_due`). Once per customer and trigger; None when the exit
    survey is switched off or the customer was already asked."""
    if trigger not in EXIT_TRIGGERS:
        raise AnswerInvalid(f"{trigger!r} is not an exit trigger", field="trigger")
    survey = Survey.objects.filter(slug=EXIT_SURVEY, active=True).first()
    if survey is None:
        return None
    customer_id = customer if isinstance(customer, int) else customer.pk
    if SurveyInvitation.objects.filter(
        customer_id=customer_id, survey=survey, reference=trigger
    ).exists():
        return None
    return invitation_create(customer=customer_id, survey=survey, channel=channel,
                             trigger=trigger, reference=trigger, now=now)


def exit_survey_link(
    *, customer: Customer | int, trigger: str, channel: str = "web", now: datetime | None = None
) -> str | None:
    """The exit-survey link to show a leaving customer right away (e.g. on the "you are
    unsubscribed" page): the open invitation for this trigger, or a new one. None when the
    exit survey is off or the customer already answered it for this trigger."""
    now = _now(now)
    customer_id = customer if isinstance(customer, int) else customer.pk
    existing = SurveyInvitation.objects.filter(
        customer_id=customer_id, survey__slug=EXIT_SURVEY, reference=trigger
    ).first()
    if existing is None:
        existing = exit_invitation_create(customer=customer_id, trigger=trigger,
                                          channel=channel, now=now)
    if existing is None or existing.used_at is not None or existing.expires_at <= now:
        return None
    return survey_url(existing.token)


DELETION_EVENTS = frozenset({"account_deleted", "account.deleted", "customer_deleted"})
"""Event types a shop sends when a customer deletes their account (any of these spellings)."""


def survey_invitations_due(
    *, now: datetime | None = None, relationship_limit: int | None = None
) -> list[SurveyInvitation]:
    """Create the invitations the triggers call for now, for messaging to send.

    In priority order, one invitation per customer per run and none to a customer invited to
    anything in the last `conf.fatigue_days()`:
    0. the exit survey to customers who deleted their account (an event in
       `DELETION_EVENTS`) or unsubscribed (messaging's `unsubscribed` suppression) in the last
       week, once per customer and trigger (reference `deletion` / `unsubscribe`, shared with
       `exit_invitation_create` and `exit_survey_link`); whether it may be delivered, and on
       which channel, is messaging's decision;
    1. CSAT after a ticket resolved in the last week and not yet rated in the help desk
       (reference `ticket:<id>`);
    2. CSAT after delivery: paid orders placed `conf.delivery_delay_days()` ago, up to a week
       before that (reference `order:<id>`);
    3. the exit survey to customers whose last paid order is `conf.lapse_days()` old (up to a
       week more; reference `lapsed:<last order id>`, so a customer who comes back and lapses
       again is asked again);
    4. relationship NPS to buying customers without an NPS invitation in the last
       `conf.relationship_gap_days()` (at most `relationship_limit` per run).
    Each reference is surveyed once (a database constraint); running twice creates nothing new.
    """
    now = _now(now)
    surveys = {
        s.slug: s
        for s in Survey.objects.filter(slug__in=["csat", "nps", EXIT_SURVEY], active=True)
    }
    busy = set(
        SurveyInvitation.objects.filter(
            created_at__gt=now - timedelta(days=conf.fatigue_days())
        ).values_list("customer_id", flat=True)
    )
    created: list[SurveyInvitation] = []

    def invite(customer_id: int, survey: Survey, trigger: str, reference: str) -> None:
        if customer_id in busy:
            return
        if SurveyInvitation.objects.filter(
            customer_id=customer_id, survey=survey, reference=reference
        ).exists():
            return
        busy.add(customer_id)
        created.append(invitation_create(
            customer=customer_id, survey=survey, trigger=trigger,
            reference=reference, now=now,
        ))

    exit_survey = surveys.get(EXIT_SURVEY)
    if exit_survey is not None:
        recent = now - timedelta(days=CATCH_UP_DAYS)
        deleted = Event.objects.filter(
            type__in=DELETION_EVENTS, occurred_at__gt=recent, occurred_at__lte=now
        ).order_by("occurred_at").values_list("customer_id", flat=True)
        for customer_id in deleted:
            invite(customer_id, exit_survey, Trigger.DELETION, Trigger.DELETION)
        unsubscribed = Suppression.objects.filter(
            reason=SuppressionReason.UNSUBSCRIBED, customer__isnull=False,
            created_at__gt=recent, created_at__lte=now, lifted_at__isnull=True,
        ).order_by("created_at").values_list("customer_id", flat=True)
        for customer_id in unsubscribed:
            if customer_id is not None:
                invite(customer_id, exit_survey, Trigger.UNSUBSCRIBE, Trigger.UNSUBSCRIBE)
    csat = surveys.get("csat")
    if csat is not None:
        # A ticket the help desk already had rated (`satisfaction`) is not asked about again.
        tickets = Ticket.objects.filter(
            resolved_at__gt=now - timedelta(days=CATCH_UP_DAYS), resolved_at__lte=now,
            satisfaction__isnull=True,
        ).order_by("resolved_at").values_list("pk", "customer_id")
        for pk, customer_id in tickets:
            invite(customer_id, csat, Trigger.TICKET, f"ticket:{pk}")
        delivered_by = now - timedelta(days=conf.delivery_delay_days())
        orders = Order.objects.filter(
            status=OrderStatus.PAID, placed_at__lte=delivered_by,
            placed_at__gt=delivered_by - timedelta(days=CATCH_UP_DAYS),
        ).order_by("placed_at").values_list("pk", "customer_id")
        for pk, customer_id in orders:
            invite(customer_id, csat, Trigger.DELIVERY, f"order:{pk}")
    if exit_survey is not None:
        lapsed_at = now - timedelta(days=conf.lapse_days())
        lapsed = (
            Order.objects.filter(status=OrderStatus.PAID).values("customer_id")
            .annotate(last=Max("placed_at"), last_id=Max("pk"))
            .filter(last__lte=lapsed_at, last__gt=lapsed_at - timedelta(days=CATCH_UP_DAYS))
            .order_by("last")
        )
        for row in lapsed:
            invite(row["customer_id"], exit_survey, Trigger.LAPSED, f"lapsed:{row['last_id']}")
    nps = surveys.get("nps")
    if nps is not None:
        recently_asked = SurveyInvitation.objects.filter(
            survey__kind=SurveyKind.NPS,
            created_at__gt=now - timedelta(days=conf.relationship_gap_days()),
        ).values("customer_id")
        buyers = (
            Customer.objects.filter(orders__status=OrderStatus.PAID, orders__placed_at__lte=now)
            .exclude(pk__in=recently_asked).distinct().order_by("pk").values_list("pk", flat=True)
        )
        if relationship_limit is not None:
            buyers = buyers[:relationship_limit]
        for customer_id in buyers:
            invite(customer_id, nps, Trigger.RELATIONSHIP, f"relationship:{now:%Y-%m-%d}")
    return created
