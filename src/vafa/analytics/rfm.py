"""RFM scores and the eleven named segments (K3), their summary and how customers move between them.

Each customer gets three numbers as of a day ``as_of``:

* **R** recency: days since the last purchase (fewer is better);
* **F** frequency: number of orders;
* **M** monetary: total spent.

Each is turned into a quintile score from 1 to 5 (5 = best: most recent, most frequent, biggest
spender) by rank: ``score = 1 + ⌊5 × (rank − 1) / n⌋``, where ``rank`` gives tied customers the
lowest rank of their group (pandas ``method="min"``). Equal values therefore always share a score,
and a value shared by many customers (most shops' F = 1) takes the lowest quintile it spans, so
one-time buyers score F = 1 however many they are.

F and M are combined as ``FM = ⌈(F + M) / 2⌉`` (half rounds up); with ``use_monetary=False``,
FM = F. The segment is then read from this grid, the widely used R × F map extended with a
*lost* corner (rows R, columns FM):

===== ================ ================== ================== ============== ==============
R\\FM  1                2                  3                  4              5
===== ================ ================== ================== ============== ==============
5     new              potential_loyalist potential_loyalist champions      champions
4     promising        potential_loyalist potential_loyalist loyal          loyal
3     about_to_sleep   about_to_sleep     need_attention     loyal          loyal
2     hibernating      hibernating        at_risk            at_risk        cant_lose
1     lost             lost               at_risk            at_risk        cant_lose
===== ================ ================== ================== ============== ==============
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from vafa.analytics.errors import InputError
from vafa.analytics.io import DateLike, day_number
from vafa.analytics.summary import PurchaseHistory, purchase_history

__all__ = [
    "SEGMENTS",
    "SEGMENT_GRID",
    "SEGMENT_LABELS",
    "quintile_scores",
    "rfm_segments_summary",
    "rfm_table",
    "rfm_transition_matrix",
]

#: Segment ids in display order, best first.
SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)

#: English names (the UI translates by id).
SEGMENT_LABELS: dict[str, str] = {
    "champions": "Champions",
    "loyal": "Loyal",
    "potential_loyalist": "Potential loyalist",
    "new": "New",
    "promising": "Promising",
    "need_attention": "Need attention",
    "about_to_sleep": "About to sleep",
    "at_risk": "At risk",
    "cant_lose": "Can't lose",
    "hibernating": "Hibernating",
    "lost": "Lost",
}

_ROWS: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "lost", "at_risk", "at_risk", "cant_lose"),
}

#: ``{(R, FM): segment id}`` for every one of the 25 score pairs.
SEGMENT_GRID: dict[tuple[int, int], str] = {
    (r, fm): segment for r, row in _ROWS.items() for fm, segment in enumerate(row, start=1)
}

_NOT_CUSTOMER = "not_customer"


def quintile_scores(values: pd.Series | np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """Score values 1–5 by rank quintile; ties share the lowest score their group spans.

    ``higher_is_better=False`` reverses the order (for recency in days, where fewer is better).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.isnan(array).any():
        raise InputError("cannot score missing values")
    ranked = pd.Series(array if higher_is_better else -array).rank(method="min").to_numpy()
    return (1 + np.floor(5 * (ranked - 1) / array.size)).astype(np.int64)


def rfm_table(
    transactions: pd.DataFrame | pa.Table | PurchaseHistory,
    *,
    as_of: DateLike | None = None,
    use_monetary: bool = True,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Score every customer who bought on or before ``as_of`` and name their segment.

    Returns one row per customer (index ``customer_id``, sorted) with ``recency_days``,
    ``frequency`` (orders), ``monetary`` (total spent), ``r_score``, ``f_score``, ``m_score``,
    ``fm_score``, ``rfm`` (e.g. ``"545"``) and ``segment`` (an id from `SEGMENTS`). Scores are
    relative to the customers present at ``as_of`` (default the last purchase day).
    """
    history = purchase_history(transactions, as_of=as_of, tz=tz)
    per = pd.DataFrame(
        {
            "recency_days": (history.as_of - history.last_day).astype(np.int64),
            "frequency": history.per_customer(history.orders).astype(np.int64),
            "monetary": history.per_customer(history.amount),
        },
        index=history.customers,
    )
    r = quintile_scores(per["recency_days"], higher_is_better=False)
    f = quintile_scores(per["frequency"])
    m = quintile_scores(per["monetary"])
    fm = (f + m + 1) // 2 if use_monetary else f
    per["r_score"] = r
    per["f_score"] = f
    per["m_score"] = m
    per["fm_score"] = fm
    per["rfm"] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
    per["segment"] = [SEGMENT_GRID[(int(a), int(b))] for a, b in zip(r, fm, strict=True)]
    per.attrs = {"as_of": str(np.datetime64(history.as_of, "D")), "tz": history.tz}
    return per


def rfm_segments_summary(rfm: pd.DataFrame, *, clv: pd.Series | None = None) -> pd.DataFrame:
    """Count, revenue and (optionally) mean predicted CLV of each segment, all 11 in order.

    Args:
        rfm: the output of `rfm_table`.
        clv: predicted CLV per customer (index ``customer_id``), e.g. from the Gamma-Gamma model;
            customers without a value are left out of ``mean_clv``.

    Returns:
        Index ``segment``; columns ``label``, ``customers``, ``customer_share`` (%), ``revenue``
        (total spent to date), ``revenue_share`` (%), ``mean_recency_days``, ``mean_frequency``,
        ``mean_monetary`` and ``mean_clv`` (NaN without ``clv``).
    """
    needed = {"segment", "monetary", "recency_days", "frequency"}
    if not needed <= set(rfm.columns):
        raise InputError("pass the output of rfm_table()")
    grouped = rfm.groupby("segment", sort=False)
    summary = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped["monetary"].sum(),
            "mean_recency_days": grouped["recency_days"].mean(),
            "mean_frequency": grouped["frequency"].mean(),
            "mean_monetary": grouped["monetary"].mean(),
        }
    ).reindex(list(SEGMENTS))
    summary["customers"] = summary["customers"].fillna(0).astype(np.int64)
    summary["revenue"] = summary["revenue"].fillna(0.0)
    total_customers = max(len(rfm), 1)
    total_revenue = float(rfm["monetary"].sum())
    summary["customer_share"] = summary["customers"] / total_customers * 100
    summary["revenue_share"] = (
        summary["revenue"] / total_revenue * 100 if total_revenue > 0 else math.nan
    )
    if clv is not None:
        values = pd.Series(clv, dtype=np.float64)
        values.index = values.index.astype("str")
        aligned = values.reindex(rfm.index)
        summary["mean_clv"] = aligned.groupby(rfm["segment"]).mean().reindex(list(SEGMENTS))
    else:
        summary["mean_clv"] = math.nan
    summary.insert(0, "label", [SEGMENT_LABELS[s] for s in SEGMENTS])
    summary.index.name = "segment"
    columns = ["label", "customers", "customer_share", "revenue", "revenue_share"]
    return summary[[*columns, "mean_recency_days", "mean_frequency", "mean_monetary", "mean_clv"]]


def rfm_transition_matrix(
    transactions: pd.DataFrame | pa.Table | PurchaseHistory,
    date_a: DateLike,
    date_b: DateLike,
    *,
    include_new: bool = False,
    use_monetary: bool = True,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Count customers by segment at ``date_a`` (rows) and at ``date_b`` (columns).

    ``matrix.loc["loyal", "at_risk"]`` is how many loyal customers slipped to at risk. Each date's
    scores are computed from the purchases up to that date. With ``include_new``, a row
    ``not_customer`` counts customers whose first purchase came after ``date_a``.
    """
    if day_number(date_b, tz) <= day_number(date_a, tz):
        raise InputError("date_b must be after date_a")
    later = purchase_history(transactions, as_of=date_b, tz=tz)
    earlier = later.until(day_number(date_a, later.tz))
    before = rfm_table(earlier, use_monetary=use_monetary)["segment"]
    after = rfm_table(later, use_monetary=use_monetary)["segment"]
    rows = list(SEGMENTS)
    start = before.reindex(after.index)
    if include_new:
        start = start.fillna(_NOT_CUSTOMER)
        rows.append(_NOT_CUSTOMER)
    else:
        start = start.dropna()
    pairs = pd.DataFrame({"from": start, "to": after.reindex(start.index)})
    matrix = pd.crosstab(pairs["from"], pairs["to"]).reindex(
        index=rows, columns=list(SEGMENTS), fill_value=0
    )
    matrix.index.name = "segment_at_a"
    matrix.columns.name = "segment_at_b"
    return matrix.astype(np.int64)
