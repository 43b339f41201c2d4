"""Reads of the feedback app: a link's invitation, answers per customer, what detractors talk
about, and the survey KPIs over time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

import jdatetime
import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from vafa.analytics.errors import InputError
from vafa.analytics.metrics import survey_metrics, survey_metrics_by
from vafa.core.errors import NotFoundError, ValidationError
from vafa.customers.models import Customer
from vafa.customers.selectors import MAX_PAGE, decode_cursor, encode_cursor
from vafa.feedback.errors import InvitationInvalid
from vafa.feedback.links import unsign_token
from vafa.feedback.models import (
    EXIT_SURVEY,
    LANGUAGES,
    SCALES,
    CustomerPreference,
    Survey,
    SurveyInvitation,
    SurveyResponse,
)
from vafa.feedback.text import bigrams, tokens


def survey_get(*, slug: str) -> Survey:
    survey = Survey.objects.filter(slug=slug, active=True).first()
    if survey is None:
        raise NotFoundError(f"no active survey {slug!r}", field="survey")
    return survey


def invitation_for_link(*, signed: str) -> SurveyInvitation:
    """The invitation behind a signed link; `InvitationInvalid` for a forged or unknown one.
    Expiry and use are judged by the services (and shown by the page)."""
    token = unsign_token(signed)
    invitation = (
        SurveyInvitation.objects.select_related("survey", "customer").filter(token=token).first()
        if token else None
    )
    if invitation is None:
        raise InvitationInvalid("this survey link is not valid")
    return invitation


def customer_language(customer: Customer) -> str:
    """The language to speak to the customer in: theirs when we support it, else the shop's."""
    language = (customer.language or "").lower()[:2]
    if language in LANGUAGES:
        return language
    return settings.LANGUAGE_CODE[:2]


def responses_page(
    *, customer_external_id: str, cursor: str | None = None, limit: int = 50
) -> tuple[list[SurveyResponse], str | None]:
    """One customer's answers in answering order, a page at a time (see customers_page)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    customer = Customer.objects.filter(external_id=customer_external_id).first()
    if customer is None:
        raise NotFoundError(f"no customer {customer_external_id!r}", field="customer_id")
    queryset: QuerySet[SurveyResponse] = (
        SurveyResponse.objects.filter(customer=customer).select_related("survey").order_by("id")
    )
    if cursor:
        queryset = queryset.filter(id__gt=decode_cursor(cursor))
    rows = list(queryset[: limit + 1])
    next_cursor = encode_cursor(rows[limit - 1].pk) if len(rows) > limit else None
    return rows[:limit], next_cursor


# -- text answers -------------------------------------------------------------------------------

BANDS = ("detractor", "passive", "promoter")
_BAND_LIMITS: dict[str, tuple[int, int]] = {"nps": (6, 8), "csat": (2, 3), "ces": (3, 5)}
"""Highest score of the detractor and of the passive band per kind (NPS 0–6 / 7–8 / 9–10,
CSAT 1–2 / 3 / 4–5, CES 1–3 / 4–5 / 6–7)."""


def score_band(kind: str, score: int) -> str:
    low, middle = _BAND_LIMITS[kind]
    if score <= low:
        return "detractor"
    return "passive" if score <= middle else "promoter"


@dataclass
class BandTerms:
    """What one score band wrote: counts are of responses using the term, not repetitions."""

    responses: int = 0
    terms: list[tuple[str, int]] = field(default_factory=list)
    bigrams: list[tuple[str, int]] = field(default_factory=list)


def text_terms_by_band(
    *, kind: str = "nps", since: datetime | None = None, until: datetime | None = None,
    top: int = 15,
) -> dict[str, BandTerms]:
    """Most frequent words and word pairs in comments, per score band, so a merchant sees what
    detractors talk about. Comments are compared in their normalised form."""
    if kind not in _BAND_LIMITS:
        raise ValidationError(f"unknown survey kind {kind!r}", field="kind")
    queryset = SurveyResponse.objects.filter(
        survey__kind=kind, score__isnull=False
    ).exclude(text_normalized="")
    if since is not None:
        queryset = queryset.filter(answered_at__gte=since)
    if until is not None:
        queryset = queryset.filter(answered_at__lt=until)
    words: dict[str, Counter[str]] = {band: Counter() for band in BANDS}
    pairs: dict[str, Counter[str]] = {band: Counter() for band in BANDS}
    result = {band: BandTerms() for band in BANDS}
    for score, text in queryset.values_list("score", "text_normalized").iterator():
        band = score_band(kind, score or 0)  # never None: filtered above
        found = tokens(text)
        result[band].responses += 1
        words[band].update(set(found))
        pairs[band].update(set(bigrams(found)))
    for band in BANDS:
        result[band].terms = sorted(words[band].items(), key=lambda i: (-i[1], i[0]))[:top]
        result[band].bigrams = sorted(pairs[band].items(), key=lambda i: (-i[1], i[0]))[:top]
    return result


# -- KPIs ---------------------------------------------------------------------------------------


def _frames(
    since: datetime | None, until: datetime | None, group: tuple[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scored answers and invitations as the metrics want them; with `group` (the lookup from
    a response, the lookup from an invitation), each frame gets a `group` column too."""
    answers = SurveyResponse.objects.filter(survey__kind__in=list(SCALES), score__isnull=False)
    invitations = SurveyInvitation.objects.filter(survey__kind__in=list(SCALES))
    if since is not None:
        answers = answers.filter(answered_at__gte=since)
        invitations = invitations.filter(created_at__gte=since)
    if until is not None:
        answers = answers.filter(answered_at__lt=until)
        invitations = invitations.filter(created_at__lt=until)
    extra = [] if group is None else ["group"]
    answer_rows = list(answers.values_list(
        "customer_id", "survey__kind", "score", "answered_at", "invitation__channel",
        *([] if group is None else [group[0]]),
    ))
    invitation_rows = list(invitations.values_list(
        "customer_id", "survey__kind", "created_at", "channel",
        *([] if group is None else [group[1]]),
    ))
    return (
        pd.DataFrame(answer_rows, columns=["customer_id", "kind", "score", "answered_at",
                                           "channel", *extra]),
        pd.DataFrame(invitation_rows, columns=["customer_id", "kind", "sent_at", "channel",
                                               *extra]),
    )


def survey_kpis(
    *, period: Literal["M", "Q", "Y"] = "M", since: datetime | None = None, until: datetime | None = None,
    by_channel: bool = False,
) -> pd.DataFrame:
    """NPS, CSAT, CES and response rate per period (default month, in the shop's time zone),
    computed by `vafa.analytics.metrics.survey_metrics`; with `by_channel`, one set per
    invitation channel (column `channel`, "" when the channel was left to messaging).

    Returns an empty frame when there is nothing to measure.
    """
    answers, invitations = _frames(since, until)
    tz = settings.TIME_ZONE
    groups: list[tuple[str | None, pd.DataFrame, pd.DataFrame]]
    if by_channel:
        channels = sorted(set(invitations["channel"]) | set(answers["channel"]))
        groups = [
            (name, answers[answers["channel"] == name], invitations[invitations["channel"] == name])
            for name in channels
        ]
    else:
        groups = [(None, answers, invitations)]
    parts: list[pd.DataFrame] = []
    for name, given, sent in groups:
        if given.empty:
            continue
        try:
            frame = survey_metrics(
                given, invitations=None if sent.empty else sent,
                period=period, as_of=None, tz=tz,
            )
        except InputError:
            continue
        parts.append(frame if name is None else frame.assign(channel=name))
    if not parts:
        return pd.DataFrame(columns=["metric", "period_start", "period_end", "complete", "value"])
    return pd.concat(parts, ignore_index=True)


KPI_GROUPS: dict[str, tuple[str, str]] = {
    "segment": ("customer__score__rfm_segment", "customer__score__rfm_segment"),
    "tier": ("customer__loyalty__tier__name", "customer__loyalty__tier__name"),
    "channel": ("invitation__channel", "channel"),
}
"""How to find each answer's and invitation's group: the customer's RFM segment (insights
`CustomerScore`), loyalty tier (loyalty `Member.tier`) or the invitation's channel."""


def survey_kpis_by(
    *,
    by: Literal["segment", "tier", "channel"],
    period: Literal["M", "Q", "Y", "JM", "JQ", "JY"] = "M",
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """NPS, CSAT, CES and response rate per period and per group, as tidy rows: `group`,
    `metric`, `period_start`, `period_end`, `complete`, `value` and the parts (see
    `vafa.analytics.metrics.survey_metrics_by`). All groups share one calendar.

    Segment and tier are the customer's current ones (the latest analysis run, today's tier),
    not those at the time of answering: the question answered is "how do today's champions
    feel", which is what a merchant acts on. "" gathers customers without a segment or tier.
    Two queries; an empty frame when nothing was answered.
    """
    if by not in KPI_GROUPS:
        raise ValidationError(f"by must be one of {', '.join(KPI_GROUPS)}", field="by")
    answers, invitations = _frames(since, until, KPI_GROUPS[by])
    if answers.empty:
        return pd.DataFrame(columns=["group", "metric", "period_start", "period_end",
                                     "complete", "value"])
    return survey_metrics_by(
        answers.drop(columns=["channel"]), by="group",
        invitations=None if invitations.empty else invitations.drop(columns=["channel"]),
        period=period, tz=settings.TIME_ZONE,
    )


# -- exit surveys -------------------------------------------------------------------------------

EXIT_SEGMENTS: dict[str, str] = {
    "segment": "customer__score__rfm_segment",
    "tier": "customer__loyalty__tier__name",
    "trigger": "invitation__trigger",
    "channel": "invitation__channel",
    "city": "customer__city",
    "country": "customer__country",
    "acquisition_source": "customer__acquisition_source",
}


@dataclass(frozen=True)
class ExitReasonCount:
    segment: str
    reason: str
    count: int


def exit_reasons(
    *, by: str = "trigger", since: datetime | None = None, until: datetime | None = None
) -> list[ExitReasonCount]:
    """Why customers left, counted per segment (`by`: segment, tier, trigger, channel, city,
    country or acquisition_source), most frequent first; feeds the churn-factors view."""
    if by not in EXIT_SEGMENTS:
        raise ValidationError(
            f"by must be one of {', '.join(EXIT_SEGMENTS)}", field="by"
        )
    queryset = SurveyResponse.objects.filter(survey__slug=EXIT_SURVEY, completed_at__isnull=False)
    if since is not None:
        queryset = queryset.filter(answered_at__gte=since)
    if until is not None:
        queryset = queryset.filter(answered_at__lt=until)
    counts: Counter[tuple[str, str]] = Counter()
    for answers, segment in queryset.values_list("answers", EXIT_SEGMENTS[by]).iterator():
        reason = (answers or {}).get("reason")
        if reason:
            counts[(str(segment or ""), str(reason))] += 1
    return [
        ExitReasonCount(segment=segment, reason=reason, count=n)
        for (segment, reason), n in sorted(counts.items(), key=lambda i: (i[0][0], -i[1], i[0][1]))
    ]


# -- preferences --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """What a customer told us they like (`updated_at` None: they have not told us yet).

    `interests` are the values of the preferences survey's choices (topic codes such as
    `books`, or category names when the merchant edited the choices to match the catalogue);
    `reward_type` is a `RewardPreference` value, `channel` a `customers.Channel` value, both
    "" when unknown."""

    interests: list[str]
    reward_type: str
    channel: str
    updated_at: datetime | None


def customer_preferences(customer_id: int) -> Preferences:
    """The customer's stated preferences, empty when none were given (one query)."""
    row = CustomerPreference.objects.filter(customer_id=customer_id).first()
    if row is None:
        return Preferences(interests=[], reward_type="", channel="", updated_at=None)
    return Preferences(
        interests=[str(i) for i in row.interests or []], reward_type=row.reward_type,
        channel=row.channel, updated_at=row.updated_at,
    )


# -- churn factors (K4) -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonCounts:
    """Exit reasons counted for one row of the churn-factors view (a segment or a period)."""

    key: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True)
class ChurnFactors:
    """Why customers left: reason codes (most frequent first), counted per segment and per
    period (oldest first, `key` the period's first day as an ISO date)."""

    reasons: list[str]
    total: int
    by_segment: list[ReasonCounts]
    over_time: list[ReasonCounts]


def period_start(day: date, period: Literal["M", "JM"]) -> date:
    """The first day of the Gregorian ("M") or Jalali ("JM") month holding `day`."""
    if period == "JM":
        jalali = jdatetime.date.fromgregorian(date=day)
        return jdatetime.date(jalali.year, jalali.month, 1).togregorian()
    return day.replace(day=1)


def churn_factors(
    *,
    by: str = "segment",
    period: Literal["M", "JM"] = "M",
    since: datetime | None = None,
    until: datetime | None = None,
) -> ChurnFactors:
    """Completed exit-survey answers counted by reason, per segment (`by`, see
    `EXIT_SEGMENTS`; "" for customers without one) and per month in the shop's time zone.
    One query."""
    if by not in EXIT_SEGMENTS:
        raise ValidationError(f"by must be one of {', '.join(EXIT_SEGMENTS)}", field="by")
    if period not in ("M", "JM"):
        raise ValidationError("period must be M or JM", field="period")
    queryset = SurveyResponse.objects.filter(survey__slug=EXIT_SURVEY, completed_at__isnull=False)
    if since is not None:
        queryset = queryset.filter(answered_at__gte=since)
    if until is not None:
        queryset = queryset.filter(answered_at__lt=until)
    zone = timezone.get_default_timezone()
    by_segment: dict[str, Counter[str]] = {}
    by_period: dict[date, Counter[str]] = {}
    overall: Counter[str] = Counter()
    rows = queryset.values_list("answers", "answered_at", EXIT_SEGMENTS[by])
    for answers, answered_at, segment in rows.iterator():
        reason = str((answers or {}).get("reason") or "")
        if not reason:
            continue
        overall[reason] += 1
        by_segment.setdefault(str(segment or ""), Counter())[reason] += 1
        start = period_start(answered_at.astimezone(zone).date(), period)
        by_period.setdefault(start, Counter())[reason] += 1
    reasons = [reason for reason, _n in sorted(overall.items(), key=lambda i: (-i[1], i[0]))]

    def row(key: str, counts: Counter[str]) -> ReasonCounts:
        return ReasonCounts(key=key, counts=dict(counts), total=sum(counts.values()))

    return ChurnFactors(
        reasons=reasons, total=sum(overall.values()),
        by_segment=[row(key, counts) for key, counts in
                    sorted(by_segment.items(), key=lambda i: (-sum(i[1].values()), i[0]))],
        over_time=[row(key.isoformat(), counts) for key, counts in sorted(by_period.items())],
    )
