"""What the overview page shows, built from a stored analysis run (never recomputed on request).

The headline cards and trend charts reuse the offline report's formatting (`report_i18n.Localizer`)
and figure building (`vafa.analytics.report`), so a number reads the same on the dashboard and in
the mailed report: Persian digits and Jalali dates in fa, Arabic-Indic digits in ar.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# The offline report's own builders: the dashboard shows the same figures, formatted alike.
from vafa.analytics.report import KPI_CARDS, Chart, ReportBuilder
from vafa.analytics.report_i18n import LANGS, Localizer, to_decimal
from vafa.dashboard.selectors import SaveableCustomer
from vafa.insights.models import AnalysisRun, RfmSegment

# The headline indicators of the overview, in the order shown (CLV cards go after churn).
HEADLINE_KPIS: tuple[str, ...] = (
    "retention_rate",
    "churn_rate",
    "aov",
    "purchase_frequency",
    "repeat_purchase_rate",
    "nps",
    "csat",
    "ces",
    "survey_response_rate",
)


@dataclass(frozen=True)
class KpiCard:
    """One headline number with its change against the previous period."""

    label: str
    value: str
    delta: str = ""
    arrow: str = ""
    tone: str = "flat"  # good | bad | flat


@dataclass(frozen=True)
class SegmentRow:
    """One RFM segment of the stored run, formatted."""

    key: str
    name: str
    count: str
    share: str
    revenue_share: str
    mean_clv: str


@dataclass(frozen=True)
class SaveRow:
    """A customer worth saving, with a rule-based reason and suggested action."""

    customer_id: int
    name: str
    segment: str
    reason: str
    action: str
    predicted_clv: str
    p_alive: str
    vip: bool


@dataclass(frozen=True)
class Overview:
    """Everything the overview template needs, already localised."""

    as_of: str
    period: str
    cards: list[KpiCard]
    loyalty_cards: list[KpiCard]
    segments: list[SegmentRow]
    charts: list[Chart]
    rfm_grid: Chart | None
    pareto: Chart | None
    cohorts: Chart | None
    saveable: list[SaveRow]


def localizer(language: str | None) -> Localizer:
    """The report localiser for a Django language code (`fa`, `ar`, `en`, `fa-ir`…)."""
    code = (language or "en").split("-")[0].lower()
    return Localizer(code if code in LANGS else "en")


def build_overview(
    run: AnalysisRun, saveable: Sequence[SaveableCustomer], language: str | None
) -> Overview:
    """Format the run's stored summary and the slipping customers for one language."""
    loc = localizer(language)
    summary: Mapping[str, Any] = run.summary or {}
    currency = summary.get("currency")
    builder = ReportBuilder(summary, loc)
    kpis = _mapping(summary.get("kpis"))
    platform = _mapping(summary.get("platform"))
    as_of = _as_of(run, summary)
    return Overview(
        as_of=loc.date(as_of.isoformat()),
        period=_period(loc, kpis),
        cards=_cards(builder, loc, summary, kpis, currency)
        + _referral_cards(loc, _mapping(platform.get("referral_rate"))),
        loyalty_cards=_loyalty_cards(loc, _mapping(platform.get("liability"))),
        segments=_segments(loc, summary, currency),
        charts=_charts(builder, loc, kpis),
        rfm_grid=_mapping(builder.rfm()).get("grid"),
        pareto=_mapping(builder.pareto()).get("chart"),
        cohorts=_first(_mapping(builder.cohorts()).get("charts")),
        saveable=[_save_row(loc, item, as_of, currency) for item in saveable],
    )


@dataclass(frozen=True)
class _Built:
    """The part of an overview that depends only on the (immutable) run and the language."""

    overview: Overview
    as_of: dt.date
    currency: str | None


@functools.lru_cache(maxsize=16)
def _built(run_key: tuple[int, dt.datetime | None], language: str) -> _Built:
    run = AnalysisRun.objects.get(pk=run_key[0])
    summary: Mapping[str, Any] = run.summary or {}
    return _Built(build_overview(run, [], language), _as_of(run, summary),
                  summary.get("currency"))


def overview_for_run(
    run_key: tuple[int, dt.datetime | None], saveable: Sequence[SaveableCustomer], language: str | None
) -> Overview:
    """`build_overview` for a finished run (`latest_run_key()`), with the summary's cards and charts built once per
    run and language in this process: a finished run never changes, and building its Plotly
    figures costs far more than reading the page's few rows. The slipping customers (which
    change with every order) are formatted fresh."""
    lang = localizer(language).lang
    built = _built(run_key, lang)
    loc = localizer(lang)
    rows = [_save_row(loc, item, built.as_of, built.currency) for item in saveable]
    return dataclasses.replace(built.overview, saveable=rows)


def _first(charts: object) -> Chart | None:
    """The first chart of a report section (the cohort retention heatmap), if any."""
    return charts[0] if isinstance(charts, list) and charts else None


def _referral_cards(loc: Localizer, referral: Mapping[str, Any]) -> list[KpiCard]:
    """The referral rate this period with its change in percentage points (stored at run time)."""
    current, previous = referral.get("current"), referral.get("previous")
    if current is None:
        return []
    value = to_decimal(current)
    card = KpiCard(label=_("Referral rate"), value=loc.percent(value, 1))
    if previous is None:
        return [card]
    change = (value - to_decimal(previous)).quantize(Decimal("0.1"))
    if change == 0:
        return [KpiCard(card.label, card.value, _("unchanged"), "●", "flat")]
    delta = _("%(change)s pp") % {"change": loc.number(change, 1, signed=True)}
    return [KpiCard(card.label, card.value, delta, "▲" if change > 0 else "▼",
                    "good" if change > 0 else "bad")]


def _loyalty_cards(loc: Localizer, liability: Mapping[str, Any]) -> list[KpiCard]:
    """What the points programme owes its members, as of the run (loyalty `liability_report`)."""
    if not liability or not liability.get("outstanding_points"):
        return []
    cards = [
        KpiCard(label=_("Points outstanding"), value=loc.number(liability["outstanding_points"])),
        KpiCard(label=_("Points liability"),
                value=loc.money(to_decimal(liability["outstanding_cost"]),
                                liability.get("currency"))),
        KpiCard(label=_("Points expiring within %(days)s days") % {"days": loc.number(30)},
                value=loc.number(liability.get("expiring_30") or 0)),
    ]
    if liability.get("breakage_rate") is not None:
        cards.append(KpiCard(label=_("Breakage (points expired unspent)"),
                             value=loc.percent(to_decimal(liability["breakage_rate"]), 1),
                             delta=_("last twelve months")))
    return cards


def _mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one (a key the summary may lack or null)."""
    return value if isinstance(value, Mapping) else {}


def _as_of(run: AnalysisRun, summary: Mapping[str, Any]) -> dt.date:
    text = summary.get("as_of")
    if isinstance(text, str):
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            pass
    return run.as_of or timezone.localdate(run.finished_at or run.started_at)


def _period(loc: Localizer, kpis: Mapping[str, Any]) -> str:
    current = kpis.get("current_period")
    previous = kpis.get("previous_period")
    if not (isinstance(current, Mapping) and isinstance(previous, Mapping)):
        return ""
    try:
        return _("This period (%(current)s) against the previous one (%(previous)s)") % {
            "current": loc.period(current["start"], current["end"]),
            "previous": loc.period(previous["start"], previous["end"]),
        }
    except KeyError:
        return ""


def _cards(
    builder: ReportBuilder,
    loc: Localizer,
    summary: Mapping[str, Any],
    kpis: Mapping[str, Any],
    currency: str | None,
) -> list[KpiCard]:
    kpis = _with_response_rate(kpis)
    previous = _mapping(kpis.get("previous"))
    specs = {spec.key: spec for spec in KPI_CARDS}
    cards: list[KpiCard] = []
    for key in HEADLINE_KPIS:
        value = kpis.get(key)
        if value is None or key not in specs:
            continue
        card = builder.card(specs[key], value, previous.get(key))
        cards.append(
            KpiCard(
                label=str(card.label),
                value=card.value,
                delta=card.delta,
                arrow=card.arrow,
                tone=card.tone,
            )
        )
        if key == "churn_rate":
            cards.extend(_clv_cards(loc, summary, currency))
    return cards


def _with_response_rate(kpis: Mapping[str, Any]) -> Mapping[str, Any]:
    """`kpis` with the survey response rate filled in from its series when the headline table
    left it out (the pipeline stores the series as `response_rate` but not always the card)."""
    if kpis.get("survey_response_rate") is not None:
        return kpis
    series = _mapping(kpis.get("series")).get("response_rate") or []
    by_start = {point.get("start"): point.get("value") for point in series
                if isinstance(point, Mapping)}
    current = by_start.get(_mapping(kpis.get("current_period")).get("start"))
    if current is None:
        return kpis
    previous = {**_mapping(kpis.get("previous")),
                "survey_response_rate": by_start.get(
                    _mapping(kpis.get("previous_period")).get("start"))}
    return {**kpis, "survey_response_rate": current, "previous": previous}


def _clv_cards(loc: Localizer, summary: Mapping[str, Any], currency: str | None) -> list[KpiCard]:
    """Total and average predicted CLV: forecasts, so they carry their horizon, not a trend."""
    clv = summary.get("clv")
    if not isinstance(clv, Mapping) or clv.get("total_predicted_clv") is None:
        return []
    total = to_decimal(clv["total_predicted_clv"])
    months = int(clv.get("horizon_months") or 12)
    horizon = ngettext("next %(n)s month", "next %(n)s months", months) % {"n": loc.number(months)}
    cards = [
        KpiCard(
            label=_("Predicted CLV, all customers"), value=loc.money(total, currency), delta=horizon
        )
    ]
    customers = summary.get("customers")
    if isinstance(customers, int) and customers > 0:
        cards.append(
            KpiCard(
                label=_("Predicted CLV per customer"),
                value=loc.money(total / customers, currency),
                delta=horizon,
            )
        )
    return cards


def _segments(loc: Localizer, summary: Mapping[str, Any], currency: str | None) -> list[SegmentRow]:
    rfm = summary.get("rfm")
    if not isinstance(rfm, Mapping):
        return []
    labels = dict(RfmSegment.choices)
    rows = []
    for item in rfm.get("segments") or []:
        key = str(item.get("segment"))
        mean_clv = item.get("mean_clv")
        rows.append(
            SegmentRow(
                key=key,
                name=str(labels.get(key, key)),
                count=loc.number(item.get("count") or 0),
                share=loc.percent(item.get("share") or 0),
                revenue_share=loc.percent(item.get("revenue_share") or 0),
                mean_clv=loc.money(mean_clv, currency) if mean_clv is not None else "—",
            )
        )
    return rows


def _charts(builder: ReportBuilder, loc: Localizer, kpis: Mapping[str, Any]) -> list[Chart]:
    series = kpis.get("series")
    if not isinstance(series, Mapping):
        return []
    charts = [
        builder.charts.series_chart(
            "retention",
            loc.t("chart_retention_churn"),
            series,
            ("retention_rate", "churn_rate"),
            kind="rate",
        ),
        builder.charts.series_chart(
            "customers",
            loc.t("chart_customers"),
            series,
            ("active_customers", "new_customers"),
            kind="count",
            bars=("new_customers",),
        ),
    ]
    return [chart for chart in charts if chart is not None]


def _save_row(
    loc: Localizer, item: SaveableCustomer, as_of: dt.date, currency: str | None
) -> SaveRow:
    return SaveRow(
        customer_id=item.customer_id,
        name=item.name or item.external_id,
        segment=str(dict(RfmSegment.choices).get(item.segment, item.segment)),
        reason=_reason(loc, item, as_of),
        action=_action(item),
        predicted_clv=loc.money(item.predicted_clv, currency)
        if item.predicted_clv is not None
        else "—",
        p_alive=loc.percent(Decimal(str(item.p_alive)) * 100, 0)
        if item.p_alive is not None
        else "—",
        vip=item.vip,
    )


def _reason(loc: Localizer, item: SaveableCustomer, as_of: dt.date) -> str:
    """Why this customer is listed, from what the scores actually say (no invented history)."""
    if item.segment == RfmSegment.CANT_LOSE:
        past = _("bought often and spent a lot")
    elif item.segment == RfmSegment.AT_RISK:
        past = _("used to buy regularly")
    else:
        past = _("bought a few times")
    if item.last_purchase is None:
        return past
    days = max((as_of - timezone.localdate(item.last_purchase)).days, 0)
    quiet = ngettext("no purchase for %(days)s day", "no purchase for %(days)s days", days) % {
        "days": loc.number(days)
    }
    return _("%(past)s, %(quiet)s") % {"past": past, "quiet": quiet}


def _action(item: SaveableCustomer) -> str:
    """A simple rule: the more valuable and the further gone, the more personal the contact."""
    if item.vip:
        return _("Call them personally (VIP)")
    if item.segment == RfmSegment.CANT_LOSE:
        return _("Send a personal win-back message")
    if item.segment == RfmSegment.AT_RISK:
        return _("Send a win-back offer")
    return _("Send a reminder with recommendations")
