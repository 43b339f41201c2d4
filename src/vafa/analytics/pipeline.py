"""The whole customer-base analysis of one transactions table, as the JSON summary of
`docs/analyze-json.md`: what `vafa analyze` writes and what the HTML report renders.

Each step calls the library's own functions (summaries, KPIs, RFM, cohorts, CLV models, value
lists, loyalty diagnosis); this module only decides their settings and shapes the result. A step
the data cannot support (e.g. no repeat buyers for the CLV models) is reported as `null` with a
reason in `warnings`, never as a crash or a made-up number.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from vafa.analytics import cohorts, diagnosis, metrics, rfm, value
from vafa.analytics.clv import (
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
    TransactionFitter,
    holdout_comparison,
)
from vafa.analytics.errors import AnalyticsError, InputError
from vafa.analytics.io import ensure_transactions
from vafa.analytics.summary import (
    PurchaseHistory,
    calibration_and_holdout_data,
    purchase_history,
    summary_data_from_transactions,
)
from vafa.core.money import quantize

SCHEMA_VERSION = 1
PERIOD_NAMES = {"M": "month", "Q": "quarter", "Y": "year",
                "JM": "jalali_month", "JQ": "jalali_season", "JY": "jalali_year"}
CLV_DISTRIBUTION_EDGES = [0, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2500, 5000,
                          10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000]
# kpi_table metric id → summary key; money metrics are written as decimal strings.
KPI_KEYS = {
    "retention_rate": "retention_rate",
    "churn_rate": "churn_rate",
    "repeat_purchase_rate": "repeat_purchase_rate",
    "average_order_value": "aov",
    "purchase_frequency": "purchase_frequency",
    "revenue_per_customer": "revenue_per_customer",
    "median_days_between_purchases": "median_days_between_purchases",
    "pareto_share": "pareto_share",
    "nps": "nps",
    "csat": "csat",
    "ces": "ces",
    "survey_response_rate": "survey_response_rate",
    "response_rate": "survey_response_rate",  # the id `survey_metrics` gives it in kpi_table
}
MONEY_KPIS = {"aov", "revenue_per_customer"}
TRANSACTION_MODELS: dict[str, type[TransactionFitter]] = {
    "bgnbd": BetaGeoFitter,
    "mbgnbd": ModifiedBetaGeoFitter,
    "pareto_nbd": ParetoNBDFitter,
}


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of one analysis. Defaults suit a typical online shop."""

    as_of: dt.date | None = None  # observation end; default: the last purchase day
    period: Literal["M", "Q", "Y", "JM", "JQ", "JY"] = "Q"  # J…: Jalali month/season/year
    active_window_days: int = 365
    time_unit: Literal["D", "W"] = "W"
    holdout_weeks: int | None = None  # None: half the observed span, at most 52 weeks
    horizon_months: int = 12
    monthly_discount_rate: float = 0.01
    vip_share: float = 0.025
    retention_spend_fraction: float = 0.1
    currency: str | None = None
    tz: str = "UTC"
    source: str = ""
    top_customers: int = 20


Progress = Callable[[str], None]


@dataclass(frozen=True)
class AnalysisResult:
    """The JSON summary and the per-customer scores behind it.

    `customers` is indexed by `customer_id` with columns `rfm_segment`, `r_score`, `f_score`,
    `m_score`, `loyalty_label`, `p_alive`, `expected_purchases` (over the CLV horizon), `clv`,
    `vip` and `retention_spend_ceiling`; CLV columns are NaN when the models could not be fitted.
    """

    summary: dict[str, Any]
    customers: pd.DataFrame


def analyze(
    transactions: pd.DataFrame,
    *,
    options: AnalysisOptions | None = None,
    surveys: pd.DataFrame | None = None,
    invitations: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every analysis on a normalised transactions table and return the JSON summary."""
    return run_analysis(transactions, options=options, surveys=surveys, invitations=invitations,
                        progress=progress).summary


def run_analysis(
    transactions: pd.DataFrame,
    *,
    options: AnalysisOptions | None = None,
    surveys: pd.DataFrame | None = None,
    invitations: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Run every analysis; return the JSON summary and the per-customer scores."""
    opts = options or AnalysisOptions()
    step = progress or (lambda _name: None)
    tx = ensure_transactions(transactions)
    if tx.empty:
        raise InputError("no purchases to analyse (after dropping refunded and cancelled orders)")
    history = purchase_history(tx, as_of=opts.as_of, tz=opts.tz)
    as_of = _date(history.as_of)
    notes: list[str] = []
    money = _Money(opts.currency)

    step("kpis")
    revenue_by_customer = pd.Series(history.per_customer(history.amount), index=history.customers)
    occasions = len(history.day)
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": opts.source,
        "as_of": as_of.isoformat(),
        "first_purchase": _date(int(history.day.min())).isoformat(),
        "currency": opts.currency,
        "customers": len(history.customers),
        "transactions": occasions,
        "revenue": money(float(revenue_by_customer.sum())),
    }
    result["kpis"] = _kpis(history, opts, money, surveys, invitations, notes)
    result["pareto_curve"] = _pareto_curve(revenue_by_customer)

    step("clv")
    clv_section, clv_frame = _clv(tx, history, opts, money, notes)
    result["clv"] = clv_section

    step("rfm")
    clv_series = clv_frame["clv"] if clv_frame is not None else None
    rfm_scores = rfm.rfm_table(history, as_of=as_of)
    result["rfm"] = _rfm(rfm_scores, clv_series, money)

    step("cohorts")
    result["cohorts"] = _cohorts(history, money)

    step("value")
    result["vip"] = _vip(clv_series, revenue_by_customer, opts, money)

    step("loyalty")
    labels = diagnosis.diagnose_loyalty(history, as_of=as_of)
    result["loyalty"] = _loyalty(labels)
    result["warnings"] = notes
    customers = _customer_scores(history.customers, rfm_scores, labels, clv_frame, opts)
    return AnalysisResult(summary=_clean(result), customers=customers)


def _customer_scores(
    ids: pd.Index,
    rfm_scores: pd.DataFrame,
    labels: pd.DataFrame,
    clv_frame: pd.DataFrame | None,
    opts: AnalysisOptions,
) -> pd.DataFrame:
    frame = pd.DataFrame(index=ids)
    frame.index.name = "customer_id"
    frame["rfm_segment"] = rfm_scores["segment"].reindex(ids).astype(str)
    for score in ("r_score", "f_score", "m_score"):
        frame[score] = rfm_scores[score].reindex(ids)
    frame["loyalty_label"] = labels["label"].reindex(ids).astype(str)
    if clv_frame is None:
        for column in ("p_alive", "expected_purchases", "clv", "retention_spend_ceiling"):
            frame[column] = np.nan
        frame["vip"] = False
        return frame
    for column in ("p_alive", "expected_purchases", "clv"):
        frame[column] = clv_frame[column].reindex(ids)
    frame["vip"] = frame.index.isin(value.vip_customers(clv_frame["clv"], opts.vip_share).index)
    frame["retention_spend_ceiling"] = value.retention_spend_ceiling(
        clv_frame["clv"], opts.retention_spend_fraction
    ).reindex(ids)
    return frame


# ------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------


def _kpis(
    history: PurchaseHistory,
    opts: AnalysisOptions,
    money: _Money,
    surveys: pd.DataFrame | None,
    invitations: pd.DataFrame | None,
    notes: list[str],
) -> dict[str, Any] | None:
    try:
        table = metrics.kpi_table(
            history, period=opts.period, as_of=_date(history.as_of), active_window=opts.active_window_days,
            answers=surveys, invitations=invitations, tz=opts.tz,
        )
    except AnalyticsError as exc:
        notes.append(f"kpis: {exc}")
        return None
    current: dict[str, Any] = dict.fromkeys(KPI_KEYS.values())
    previous: dict[str, Any] = dict.fromkeys(KPI_KEYS.values())
    for row in table.itertuples():
        key = KPI_KEYS.get(str(row.metric))
        if key is None:
            continue
        convert = money if key in MONEY_KPIS else _number
        current[key] = convert(float(row.current))
        previous[key] = convert(float(row.previous))
    bounds = [dt.date.fromisoformat(table.attrs[k]) for k in ("previous_start", "current_start")]
    bounds.append(dt.date.fromisoformat(table.attrs["current_end"]) + dt.timedelta(days=1))
    period_only = metrics.time_between_purchases(
        history, period=bounds, as_of=_date(history.as_of), tz=opts.tz
    )
    previous["mean_days_between_purchases"] = _number(period_only["mean_days"].iloc[0])
    current["mean_days_between_purchases"] = _number(period_only["mean_days"].iloc[1])
    rebuy = metrics.rebuy_rates(history, as_of=_date(history.as_of), tz=opts.tz)
    current["rebuy_rate_after_one"], current["rebuy_rate_after_two_plus"] = _rebuy(rebuy)
    previous["rebuy_rate_after_one"] = previous["rebuy_rate_after_two_plus"] = None
    return {
        "period": PERIOD_NAMES[opts.period],
        "current_period": {"start": table.attrs["current_start"],
                           "end": table.attrs["current_end"]},
        "previous_period": {"start": table.attrs["previous_start"],
                            "end": table.attrs["previous_end"]},
        "active_window_days": opts.active_window_days,
        **current,
        "previous": previous,
        "series": _series(history, opts, money, surveys, invitations),
    }


def _rebuy(rebuy: pd.DataFrame) -> tuple[float | None, float | None]:
    """Rebuy rate after exactly one purchase, and pooled over two or more (K8)."""
    one = rebuy[rebuy["k"] == 1]
    after_one = _number(one["value"].iloc[0]) if len(one) else None
    more = rebuy[rebuy["k"] >= 2]
    eligible = int(more["eligible"].sum())
    after_more = _number(100.0 * more["rebought"].sum() / eligible) if eligible else None
    return after_one, after_more


def _series(
    history: PurchaseHistory,
    opts: AnalysisOptions,
    money: _Money,
    surveys: pd.DataFrame | None,
    invitations: pd.DataFrame | None,
) -> dict[str, list[dict[str, Any]]]:
    kwargs: dict[str, Any] = {"period": opts.period, "as_of": _date(history.as_of), "tz": opts.tz}
    churn = metrics.churn_rate(history, active_window=opts.active_window_days, **kwargs)
    retention = metrics.retention_rate(history, active_window=opts.active_window_days, **kwargs)
    aov = metrics.average_order_value(history, **kwargs)
    series = {
        "retention_rate": _points(retention, "value", _number),
        "churn_rate": _points(churn, "value", _number),
        "aov": _points(aov, "value", money),
        "revenue": _points(aov, "revenue", money),
        "active_customers": _points(churn, "E", int),
        "new_customers": _points(churn, "new", int),
    }
    if surveys is not None:
        table = metrics.survey_metrics(surveys, invitations=invitations, **kwargs)
        for metric_name, rows in table.groupby("metric", sort=False):
            series[str(metric_name)] = _points(rows, "value", _number)
    return series


def _points(frame: pd.DataFrame, column: str, convert: Callable[[Any], Any]) -> list[dict[str, Any]]:
    return [
        {"start": _date(start).isoformat(), "end": _date(end).isoformat(),
         "value": None if _missing(val) else convert(val)}
        for start, end, val in zip(frame["period_start"], frame["period_end"], frame[column],
                                   strict=True)
    ]


def _pareto_curve(revenue: pd.Series) -> list[list[float]]:
    """101 points: % of customers (best first) against % of revenue they bring."""
    values = np.sort(revenue.to_numpy(dtype=np.float64))[::-1]
    total = values.sum()
    if total <= 0 or len(values) == 0:
        return []
    cumulative = np.concatenate([[0.0], np.cumsum(values)]) / total * 100
    shares = np.linspace(0, 100, 101)
    positions = np.round(shares / 100 * len(values)).astype(int)
    return [[float(s), round(float(cumulative[p]), 3)] for s, p in zip(shares, positions, strict=True)]


def _rfm(table: pd.DataFrame, clv: pd.Series | None, money: _Money) -> dict[str, Any]:
    summary = rfm.rfm_segments_summary(table, clv=clv)
    segments = [
        {
            "segment": str(segment),
            "count": int(row.customers),
            "share": _number(row.customer_share),
            "revenue_share": _number(row.revenue_share),
            "mean_clv": None if _missing(row.mean_clv) else money(float(row.mean_clv)),
        }
        for segment, row in summary.iterrows()
    ]
    grid = (
        table.groupby(["r_score", "f_score"], observed=True)["monetary"]
        .agg(["size", "sum"])
        .reset_index()
    )
    return {
        "segments": segments,
        "grid": [
            {"r": int(r.r_score), "f": int(r.f_score), "count": int(r.size),
             "revenue": money(float(r.sum))}
            for r in grid.itertuples()
        ],
    }


def _cohorts(history: PurchaseHistory, money: _Money) -> dict[str, Any]:
    tidy = cohorts.cohort_table(history, as_of=_date(history.as_of))
    # cohort_matrix puts each cohort's size in a first column; the months follow.
    retention = cohorts.cohort_matrix(tidy, "retention_rate")
    sizes = retention.pop("cohort_size")
    revenue = cohorts.cohort_matrix(tidy, "revenue_retention_rate").drop(columns="cohort_size")
    cumulative = cohorts.cohort_matrix(tidy, "cumulative_revenue_per_customer").drop(
        columns="cohort_size"
    )

    def rows(frame: pd.DataFrame, convert: Callable[[Any], Any]) -> list[list[Any]]:
        return [[None if _missing(v) else convert(v) for v in row] for row in frame.to_numpy()]

    return {
        "cohorts": [pd.Timestamp(c).strftime("%Y-%m") for c in retention.index],
        "sizes": [int(sizes.loc[c]) for c in retention.index],
        "months_since_first": [int(k) for k in retention.columns],
        "retention": rows(retention, _number),
        "revenue_retention": rows(revenue, _number),
        "cumulative_revenue_per_customer": rows(cumulative, money),
    }


def _clv(
    tx: pd.DataFrame,
    history: PurchaseHistory,
    opts: AnalysisOptions,
    money: _Money,
    notes: list[str],
) -> tuple[dict[str, Any] | None, pd.DataFrame | None]:
    """Fit the purchase models and Gamma-Gamma on all data up to `as_of`; compare the purchase
    models on a holdout split; value every customer with the best one."""
    unit = opts.time_unit
    days_per_unit = 7.0 if unit == "W" else 1.0
    summary = summary_data_from_transactions(
        tx, observation_end=_date(history.as_of), freq=unit, include_monetary=True, tz=opts.tz
    )
    f = summary["frequency"].to_numpy()
    r = summary["recency"].to_numpy()
    t = summary["T"].to_numpy()
    section: dict[str, Any] = {
        "time_unit": "weeks" if unit == "W" else "days",
        "calibration_end": None,
        "horizon_months": opts.horizon_months,
        "monthly_discount_rate": opts.monthly_discount_rate,
    }
    fitted: dict[str, TransactionFitter] = {}
    for name, model_class in TRANSACTION_MODELS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = model_class().fit(f, r, t)
        except AnalyticsError as exc:
            notes.append(f"clv.{name}: {exc}")
            section[name] = None
            continue
        fitted[name] = model
        section[name] = _model_section(model)
    comparison = _comparison(tx, history, opts, notes)
    section["comparison"] = comparison
    if not fitted:
        return section, None
    chosen = comparison["selected"] if comparison else "bgnbd"
    model = fitted.get(chosen) or next(iter(fitted.values()))
    repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    try:
        spend = GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
    except AnalyticsError as exc:
        notes.append(f"clv.gamma_gamma: {exc}")
        section["gamma_gamma"] = None
        return section, None
    section["gamma_gamma"] = _model_section(spend)
    monetary = summary["monetary_value"].to_numpy()
    clv = spend.customer_lifetime_value(
        model, f, r, t, monetary, time=opts.horizon_months,
        discount_rate=opts.monthly_discount_rate, freq=unit,
    )
    horizon = opts.horizon_months * 30.0 / days_per_unit
    frame = pd.DataFrame(
        {
            "clv": clv,
            "p_alive": model.conditional_probability_alive(f, r, t),
            "expected_purchases": model.conditional_expected_number_of_purchases_up_to_time(
                horizon, f, r, t
            ),
        },
        index=summary.index,
    )
    section["selected_model"] = chosen
    section["total_predicted_clv"] = money(float(frame["clv"].sum()))
    section["distribution"] = _histogram(frame["clv"], money)
    top = frame.sort_values("clv", ascending=False).head(opts.top_customers)
    section["top_customers"] = [
        {"customer_id": str(cid), "clv": money(float(row.clv)),
         "p_alive": round(float(row.p_alive), 4),
         "expected_purchases": round(float(row.expected_purchases), 3)}
        for cid, row in top.iterrows()
    ]
    return section, frame


def _comparison(
    tx: pd.DataFrame, history: PurchaseHistory, opts: AnalysisOptions, notes: list[str]
) -> dict[str, Any] | None:
    """Fit on a calibration period and compare with the holdout purchases (FHL 2005, fig. 4)."""
    span_days = int(history.as_of - int(history.day.min()))
    holdout_days = (opts.holdout_weeks * 7 if opts.holdout_weeks is not None
                    else min(span_days // 2, 52 * 7))
    if holdout_days < 28 or span_days - holdout_days < 28:
        notes.append("clv.comparison: the data span is too short for a holdout check")
        return None
    calibration_end = _date(history.as_of - holdout_days)
    cal = calibration_and_holdout_data(
        tx, calibration_end=calibration_end, observation_end=_date(history.as_of),
        freq=opts.time_unit, include_monetary=False, tz=opts.tz,
    )
    args = (cal["frequency_cal"].to_numpy(), cal["recency_cal"].to_numpy(),
            cal["T_cal"].to_numpy())
    actual: list[float] | None = None
    buckets: list[str] = []
    predicted: dict[str, list[float]] = {}
    errors: dict[str, float] = {}
    for name, model_class in TRANSACTION_MODELS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = model_class().fit(*args)
        except AnalyticsError as exc:
            notes.append(f"clv.comparison.{name}: {exc}")
            continue
        check = holdout_comparison(
            model, *args, cal["frequency_holdout"].to_numpy(),
            cal["duration_holdout"].to_numpy(),
        )
        buckets = [str(b) for b in check.table.index]
        actual = [round(float(v), 4) for v in check.table["actual_mean"]]
        predicted[name] = [round(float(v), 4) for v in check.table["predicted_mean"]]
        errors[name] = round(float(check.mean_absolute_error), 5)
    if not errors or actual is None:
        return None
    return {
        "calibration_end": calibration_end.isoformat(),
        "selected": min(errors, key=errors.__getitem__),
        "buckets": buckets,
        "actual": actual,
        "predicted": predicted,
        "error": errors,
    }


def _model_section(model: Any) -> dict[str, Any]:
    errors = getattr(model, "standard_errors_", None) or {}
    return {
        "params": {k: round(float(v), 6) for k, v in model.params_.items()},
        "log_likelihood": round(float(model.log_likelihood_), 4),
        "standard_errors": {k: None if _missing(v) else round(float(v), 6)
                            for k, v in dict(errors).items()},
    }


def _histogram(clv: pd.Series, money: _Money) -> dict[str, Any]:
    top = float(clv.max()) if len(clv) else 0.0
    edges = [e for e in CLV_DISTRIBUTION_EDGES if e <= top] or [0]
    edges.append(next((e for e in CLV_DISTRIBUTION_EDGES if e > top), math.ceil(top) + 1))
    counts, _ = np.histogram(clv.clip(lower=0).to_numpy(), bins=np.array(edges, dtype=float))
    return {"edges": [money(float(e)) for e in edges], "counts": [int(c) for c in counts]}


def _vip(
    clv: pd.Series | None, revenue: pd.Series, opts: AnalysisOptions, money: _Money
) -> dict[str, Any] | None:
    if clv is None or clv.empty:
        return None
    vips = value.vip_customers(clv, top_share=opts.vip_share)
    ids = vips.index
    total = float(revenue.sum())
    return {
        "top_share": round(opts.vip_share * 100, 3),
        "count": len(vips),
        "min_clv": money(float(clv.loc[ids].min())) if len(ids) else None,
        "revenue_share": _number(100.0 * float(revenue.reindex(ids).sum()) / total)
        if total else None,
        "retention_spend_fraction": opts.retention_spend_fraction,
    }


def _loyalty(labels: pd.DataFrame) -> dict[str, Any]:
    table = diagnosis.loyalty_label_summary(labels)
    return {
        "labels": [
            {"label": str(label), "count": int(row.customers),
             "share": _number(row.customer_share), "revenue_share": _number(row.revenue_share)}
            for label, row in table.iterrows()
        ]
    }


# ------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------


class _Money:
    """Floats from the statistics become decimal strings at the currency's precision."""

    def __init__(self, currency: str | None) -> None:
        self.currency = currency or "USD"

    def __call__(self, amount: Any) -> str | None:
        if _missing(amount):
            return None
        return str(quantize(Decimal(repr(float(amount))), self.currency))


def _number(value: Any, digits: int = 4) -> float | None:
    if _missing(value):
        return None
    return round(float(value), digits)


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value)) or not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _date(value: Any) -> dt.date:
    """A day number, Timestamp, date or ISO string as a `date`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if isinstance(value, pd.Timestamp):
        return value.date()
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(value))


def _clean(value: Any) -> Any:
    """JSON-safe: no NaN/inf (→ null), numpy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
