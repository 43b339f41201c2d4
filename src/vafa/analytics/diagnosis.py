"""An explainable loyalty label per customer, read from behaviour alone (K8, seed 002).

Seed 002 separates kinds of loyalty: habitual buyers, customers held by incentives, price-driven
customers, and those drifting away. Attitudinal loyalty needs surveys; this module labels what
the purchase history shows. Each customer gets exactly one label, the first rule that applies, in
this order (the order puts what needs action first):

=================  =============================================================  ====================
label              rule (defaults)                                                reason key
=================  =============================================================  ====================
one_time           one purchase occasion only                                     one_purchase
lapsing            2+ occasions, and days since the last one > ``lapse_factor``    overdue
                   (2) × their median interval and > ``lapse_min_days`` (30)
price_driven       discount ≥ ``price_discount_share`` (25 %) of the value before  deep_discounts
                   discounts, or > ``sale_order_share`` (50 %) of orders placed    sale_period_orders
                   in the ``sale_periods`` given
incentive_driven   > ``incentive_order_share`` (50 %) of orders used a discount    discounted_orders
                   or points (``discount`` > 0)
habitual           ``habitual_min_purchases`` (3)+ occasions at regular intervals: regular_intervals
                   coefficient of variation of the gaps ≤ ``habitual_max_cv`` (0.5)
regular            none of the above                                              no_strong_pattern
=================  =============================================================  ====================

A purchase occasion is one customer-day (as in `vafa.analytics.summary`); order shares count
orders. ``amount`` is taken as what the customer paid after the discount, so the value before
discounts is ``amount + discount``. Without a ``discount`` column (and without ``sale_periods``)
no customer can be labelled price- or incentive-driven; `diagnose_loyalty` says so in
``attrs["discount_data"]``.

Each row carries ``reason_key`` (stable, for translation), ``reason`` (an English sentence with the
numbers) and the numbers themselves, so a merchant can see why.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from vafa.analytics.errors import InputError
from vafa.analytics.io import DateLike, day_number
from vafa.analytics.summary import PurchaseHistory, purchase_history

__all__ = ["LABELS", "REASONS", "diagnose_loyalty", "loyalty_label_summary"]

#: Labels in the order their rules are tried.
LABELS: tuple[str, ...] = (
    "one_time",
    "lapsing",
    "price_driven",
    "incentive_driven",
    "habitual",
    "regular",
)

#: English reason templates by key; the fields are columns of `diagnose_loyalty`'s result.
REASONS: dict[str, str] = {
    "one_purchase": "Bought once, {days_since_last:.0f} days ago.",
    "overdue": (
        "Last bought {days_since_last:.0f} days ago, {lapse_ratio:.1f}× their usual "
        "{median_interval_days:.0f}-day interval."
    ),
    "deep_discounts": "Discounts made up {discount_value_share:.0%} of the value they bought.",
    "sale_period_orders": "{sale_order_share:.0%} of their orders were placed during sales.",
    "discounted_orders": "{discounted_order_share:.0%} of their orders used a discount or points.",
    "regular_intervals": (
        "{purchases} purchases about every {median_interval_days:.0f} days "
        "(variation {interval_cv:.2f})."
    ),
    "no_strong_pattern": "{purchases} purchases with no strong pattern.",
}


def diagnose_loyalty(
    transactions: pd.DataFrame | pa.Table | PurchaseHistory,
    *,
    as_of: DateLike | None = None,
    habitual_min_purchases: int = 3,
    habitual_max_cv: float = 0.5,
    lapse_factor: float = 2.0,
    lapse_min_days: int = 30,
    incentive_order_share: float = 0.5,
    price_discount_share: float = 0.25,
    sale_periods: Sequence[tuple[DateLike, DateLike]] = (),
    sale_order_share: float = 0.5,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Label every customer who bought on or before ``as_of`` (default: the last purchase day).

    ``sale_periods`` are ``(first_day, last_day)`` pairs, both inclusive, in the shop's zone.

    Returns:
        Index ``customer_id`` (sorted); columns ``label``, ``reason_key``, ``reason``,
        ``purchases`` (occasions), ``orders``, ``revenue``, ``days_since_last``,
        ``median_interval_days``, ``interval_cv``, ``lapse_ratio``, ``discounted_order_share``,
        ``discount_value_share`` and ``sale_order_share`` (NaN where not computable).
    """
    if habitual_min_purchases < 3:
        raise InputError("habitual_min_purchases must be at least 3 (two gaps to compare)")
    for name, share in (
        ("incentive_order_share", incentive_order_share),
        ("price_discount_share", price_discount_share),
        ("sale_order_share", sale_order_share),
    ):
        if not 0.0 <= share < 1.0:
            raise InputError(f"{name} must be in [0, 1)")
    if lapse_factor <= 0 or habitual_max_cv < 0 or lapse_min_days < 0:
        raise InputError("lapse_factor must be positive; habitual_max_cv, lapse_min_days ≥ 0")

    history = purchase_history(transactions, as_of=as_of, tz=tz)
    has_discount = history.discount is not None
    zeros = np.zeros(len(history.code))
    in_sale = _in_sale(history.day, sale_periods, history.tz)
    orders = history.orders.astype(np.float64)
    result = pd.DataFrame(
        {
            "orders": history.per_customer(orders).astype(np.int64),
            "revenue": history.per_customer(history.amount),
            "days_since_last": (history.as_of - history.last_day).astype(np.int64),
            "discounted_orders": history.per_customer(
                zeros if history.discounted_orders is None else history.discounted_orders
            ),
            "discount": history.per_customer(
                zeros if history.discount is None else history.discount
            ),
            # sale periods are whole days, so all of an occasion's orders are in or out
            "sale_orders": history.per_customer(orders * in_sale),
        },
        index=history.customers,
    )
    result = result.join(_interval_stats(history))

    gross = result["revenue"] + result["discount"]
    result["discounted_order_share"] = (
        result["discounted_orders"] / result["orders"] if has_discount else np.nan
    )
    result["discount_value_share"] = (
        np.where(gross > 0, result["discount"] / gross.where(gross > 0, 1.0), 0.0)
        if has_discount
        else np.nan
    )
    result["sale_order_share"] = (
        result["sale_orders"] / result["orders"] if len(sale_periods) else np.nan
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        result["lapse_ratio"] = result["days_since_last"] / result["median_interval_days"]

    purchases = result["purchases"].to_numpy()
    since = result["days_since_last"].to_numpy(dtype=np.float64)
    lapse = result["lapse_ratio"].to_numpy(dtype=np.float64)
    cv = result["interval_cv"].to_numpy(dtype=np.float64)
    discounted = result["discounted_order_share"].to_numpy(dtype=np.float64)
    deep = result["discount_value_share"].to_numpy(dtype=np.float64)
    sale = result["sale_order_share"].to_numpy(dtype=np.float64)
    rules: list[tuple[np.ndarray, str, str]] = [
        (purchases == 1, "one_time", "one_purchase"),
        (
            (purchases >= 2) & (lapse > lapse_factor) & (since > lapse_min_days),
            "lapsing",
            "overdue",
        ),
        (deep >= price_discount_share, "price_driven", "deep_discounts"),
        (sale > sale_order_share, "price_driven", "sale_period_orders"),
        (discounted > incentive_order_share, "incentive_driven", "discounted_orders"),
        (
            (purchases >= habitual_min_purchases) & (cv <= habitual_max_cv),
            "habitual",
            "regular_intervals",
        ),
    ]
    label = np.full(len(result), "regular", dtype=object)
    reason_key = np.full(len(result), "no_strong_pattern", dtype=object)
    decided = np.zeros(len(result), dtype=bool)
    for mask, name, key in rules:
        hit = np.nan_to_num(mask, nan=False).astype(bool) & ~decided
        label[hit] = name
        reason_key[hit] = key
        decided |= hit
    result["label"] = label
    result["reason_key"] = reason_key
    result["reason"] = _reasons(result, reason_key)
    result.attrs = {
        "as_of": str(np.datetime64(history.as_of, "D")),
        "discount_data": has_discount,
        "sale_periods": len(sale_periods),
    }
    columns = [
        "label",
        "reason_key",
        "reason",
        "purchases",
        "orders",
        "revenue",
        "days_since_last",
        "median_interval_days",
        "interval_cv",
        "lapse_ratio",
        "discounted_order_share",
        "discount_value_share",
        "sale_order_share",
    ]
    return result[columns]


def _reasons(result: pd.DataFrame, reason_key: np.ndarray) -> np.ndarray:
    """Fill each reason template with the numbers of its own rows only."""
    reasons = np.empty(len(result), dtype=object)
    for key, template in REASONS.items():
        rows = reason_key == key
        if rows.any():
            fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
            records = result.loc[rows, fields].to_dict("records")
            reasons[rows] = [template.format(**record) for record in records]
    return reasons


def _in_sale(days: np.ndarray, periods: Sequence[tuple[DateLike, DateLike]], tz: str) -> np.ndarray:
    inside = np.zeros(len(days), dtype=bool)
    for first, last in periods:
        start, end = day_number(first, tz), day_number(last, tz)
        if end < start:
            raise InputError("a sale period ends before it starts")
        inside |= (days >= start) & (days <= end)
    return inside


def _interval_stats(history: PurchaseHistory) -> pd.DataFrame:
    """Purchase occasions, median gap and coefficient of variation of gaps per customer."""
    count = len(history.customers)
    same = history.code[1:] == history.code[:-1]
    owner = history.code[1:][same]
    gaps = (history.day[1:] - history.day[:-1])[same].astype(np.float64)
    n_gaps = np.bincount(owner, minlength=count)
    total = np.bincount(owner, weights=gaps, minlength=count)
    squares = np.bincount(owner, weights=gaps * gaps, minlength=count)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n_gaps
        std = np.sqrt(np.clip(squares / n_gaps - mean * mean, 0.0, None))
        cv = np.where(n_gaps >= 2, std / mean, np.nan)
    median = pd.Series(gaps).groupby(owner).median().reindex(range(count)).to_numpy()
    return pd.DataFrame(
        {
            "purchases": history.per_customer().astype(np.int64),
            "median_interval_days": median,
            "interval_cv": cv,
        },
        index=history.customers,
    )


def loyalty_label_summary(diagnosis: pd.DataFrame) -> pd.DataFrame:
    """Customers and revenue per label, every label in rule order (``share`` columns in %)."""
    if not {"label", "revenue"} <= set(diagnosis.columns):
        raise InputError("pass the output of diagnose_loyalty()")
    grouped = diagnosis.groupby("label", sort=False)
    summary = pd.DataFrame(
        {"customers": grouped.size(), "revenue": grouped["revenue"].sum()}
    ).reindex(list(LABELS))
    summary["customers"] = summary["customers"].fillna(0).astype(np.int64)
    summary["revenue"] = summary["revenue"].fillna(0.0)
    total_revenue = float(summary["revenue"].sum())
    summary["customer_share"] = summary["customers"] / max(len(diagnosis), 1) * 100
    summary["revenue_share"] = (
        summary["revenue"] / total_revenue * 100 if total_revenue > 0 else np.nan
    )
    summary.index.name = "label"
    return summary[["customers", "customer_share", "revenue", "revenue_share"]]
