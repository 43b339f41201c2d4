"""Support signals (A8): how fast tickets are answered and resolved, and how they were rated.

Reads only: tickets come from the foundation's `customers.Ticket` (imported or sent by the help
desk); the numbers are computed by `vafa.analytics.metrics.support_times`. A ticket's rating is
the help desk's own `satisfaction` when it has one, else the answer to our CSAT survey sent after
the ticket was resolved (invitation reference `ticket:<id>`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import pandas as pd
from django.conf import settings
from django.db.models import Q

from vafa.analytics.errors import InputError, StatisticalWarning
from vafa.analytics.metrics import support_times
from vafa.core.errors import ValidationError
from vafa.customers.models import Ticket
from vafa.feedback.models import SurveyKind, SurveyResponse

SUPPORT_COLUMNS = ["metric", "period_start", "period_end", "complete", "value", "p90", "mean",
                   "tickets", "rated", "satisfied", "mean_rating"]


def _survey_ratings(ticket_ids: list[int]) -> dict[int, int]:
    """The CSAT survey score given after each ticket, by ticket id (one query)."""
    if not ticket_ids:
        return {}
    rows = SurveyResponse.objects.filter(
        survey__kind=SurveyKind.CSAT, score__isnull=False,
        invitation__reference__in=[f"ticket:{pk}" for pk in ticket_ids],
    ).values_list("invitation__reference", "score")
    return {int(reference.split(":", 1)[1]): int(score) for reference, score in rows if score}


def _ticket_frame(since: datetime | None, until: datetime | None) -> pd.DataFrame:
    queryset = Ticket.objects.all()
    if since is not None:
        queryset = queryset.filter(opened_at__gte=since)
    if until is not None:
        queryset = queryset.filter(opened_at__lt=until)
    rows = list(queryset.values_list("pk", "opened_at", "first_response_at", "resolved_at",
                                     "channel", "satisfaction"))
    frame = pd.DataFrame(rows, columns=["id", "opened_at", "first_response_at", "resolved_at",
                                        "channel", "satisfaction"])
    surveyed = _survey_ratings([int(pk) for pk, *_rest in rows if _rest[-1] is None])
    if surveyed:
        from_survey = frame["id"].map(surveyed)
        frame["satisfaction"] = frame["satisfaction"].where(
            frame["satisfaction"].notna(), from_survey
        )
    return frame


def support_kpis(
    *,
    period: Literal["M", "Q", "Y", "JM", "JQ", "JY"] | None = "M",
    by_channel: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """First response time, resolution time (median and p90, in hours) and ticket CSAT per
    period in the shop's time zone (`None`: one period over everything), for tickets opened
    in [`since`, `until`); with
    `by_channel`, one set per ticket channel (column `channel`, "" when unknown). Empty frame
    (same columns) when there are no tickets."""
    if period not in ("M", "Q", "Y", "JM", "JQ", "JY", None):
        raise ValidationError("period must be M, Q, Y, JM, JQ, JY or None", field="period")
    frame = _ticket_frame(since, until)
    groups = (
        [(str(name), part) for name, part in frame.groupby("channel", sort=True)]
        if by_channel else [("", frame)]
    )
    parts: list[pd.DataFrame] = []
    for name, part in groups:
        if part.empty:
            continue
        try:
            with warnings.catch_warnings():
                # a ticket answered "before" it was opened is a help-desk clock problem; the
                # metric leaves it out and the page has nothing more useful to say about it
                warnings.simplefilter("ignore", StatisticalWarning)
                result = support_times(part, period=period, tz=settings.TIME_ZONE)
        except InputError:
            continue
        parts.append(result.assign(channel=name) if by_channel else result)
    if not parts:
        return pd.DataFrame(columns=SUPPORT_COLUMNS + (["channel"] if by_channel else []))
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class TicketRow:
    """One ticket in a customer's history, with its timings (hours) and rating."""

    id: int
    external_id: str
    subject: str
    channel: str
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    first_response_hours: float | None
    resolution_hours: float | None
    satisfaction: int | None
    """The help desk's rating (1–5), else the CSAT survey answer about this ticket."""
    rating_source: Literal["help_desk", "survey", ""]
    customer_id: int = 0
    customer_name: str = ""


def _hours(later: datetime | None, earlier: datetime) -> float | None:
    if later is None or later < earlier:
        return None
    return round((later - earlier).total_seconds() / 3600, 2)


def customer_tickets(customer_id: int, *, limit: int = 50) -> list[TicketRow]:
    """The customer's latest tickets, newest first (two queries whatever the history size)."""
    if not 1 <= limit <= 500:
        raise ValidationError("limit must be between 1 and 500", field="limit")
    tickets = list(Ticket.objects.filter(customer_id=customer_id).order_by("-opened_at", "-pk")
                   [:limit])
    return _ticket_rows(tickets)


def tickets_rated_low(
    *, at_most: int = 2, since: datetime | None = None, limit: int = 20
) -> list[TicketRow]:
    """Recently resolved tickets the customer rated `at_most` or lower (help desk rating or our
    CSAT survey about the ticket), newest first: the ones a team lead reads. Three queries."""
    if not 1 <= limit <= 500:
        raise ValidationError("limit must be between 1 and 500", field="limit")
    surveyed_low = SurveyResponse.objects.filter(
        survey__kind=SurveyKind.CSAT, score__lte=at_most,
        invitation__reference__startswith="ticket:",
    )
    if since is not None:
        surveyed_low = surveyed_low.filter(answered_at__gte=since)
    ids = {
        int(reference.split(":", 1)[1])
        for reference in surveyed_low.values_list("invitation__reference", flat=True)
        if reference.split(":", 1)[1].isdigit()
    }
    queryset = Ticket.objects.filter(
        Q(satisfaction__lte=at_most) | Q(satisfaction__isnull=True, pk__in=ids)
    ).select_related("customer")
    if since is not None:
        queryset = queryset.filter(Q(resolved_at__gte=since) | Q(resolved_at__isnull=True,
                                                                 opened_at__gte=since))
    tickets = list(queryset.order_by("-resolved_at", "-opened_at", "-pk")[:limit])
    names = {ticket.pk: str(ticket.customer) for ticket in tickets}
    return [replace(row, customer_name=names[row.id]) for row in _ticket_rows(tickets)
            if row.satisfaction is not None and row.satisfaction <= at_most]


def _ticket_rows(tickets: list[Ticket]) -> list[TicketRow]:
    surveyed = _survey_ratings([t.pk for t in tickets if t.satisfaction is None])
    rows: list[TicketRow] = []
    for ticket in tickets:
        rating = ticket.satisfaction if ticket.satisfaction is not None else surveyed.get(ticket.pk)
        source: Literal["help_desk", "survey", ""] = (
            "help_desk" if ticket.satisfaction is not None
            else "survey" if rating is not None else ""
        )
        rows.append(TicketRow(
            id=ticket.pk, external_id=ticket.external_id, subject=ticket.subject,
            channel=ticket.channel, opened_at=ticket.opened_at,
            first_response_at=ticket.first_response_at, resolved_at=ticket.resolved_at,
            first_response_hours=_hours(ticket.first_response_at, ticket.opened_at),
            resolution_hours=_hours(ticket.resolved_at, ticket.opened_at),
            satisfaction=rating, rating_source=source, customer_id=ticket.customer_id,
        ))
    return rows
