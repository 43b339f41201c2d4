"""Who deserves the best perks, and how much keeping a customer may cost (A3, seed 000).

Seed 000 reserves the most valuable gifts for the top 2–3 % of customers and insists that retention
spend stay below a customer's long-term value. Both rules work on a per-customer CLV prediction
(e.g. BG/NBD × Gamma-Gamma from `vafa.analytics.clv`), passed in as a Series indexed by customer id.

Values here are floats, fine for ranking and statistics; the platform converts a ceiling to
``Decimal`` in the shop's currency before it becomes a budget.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vafa.analytics.errors import InputError

__all__ = ["retention_spend_ceiling", "vip_customers"]


def _checked(clv: pd.Series) -> pd.Series:
    if not isinstance(clv, pd.Series):
        raise InputError("clv must be a pandas Series indexed by customer_id")
    if clv.empty:
        raise InputError("clv is empty")
    try:
        values = clv.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise InputError("clv must hold numbers") from error
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        customer = values.index[int(np.flatnonzero(bad)[0])]
        raise InputError(f"clv of customer {customer!r} is missing or not finite")
    if values.index.has_duplicates:
        raise InputError("clv has duplicate customer ids")
    return values


def vip_customers(clv: pd.Series, top_share: float = 0.025) -> pd.DataFrame:
    """Return the top ``top_share`` of customers by predicted CLV, best first.

    The group has ⌈top_share × customers⌉ members (at least one); equal CLVs at the cut are broken
    by customer id, so the list is stable from run to run. Columns: ``clv``, ``rank`` (1 = best)
    and ``clv_share`` (% of all predicted CLV held by that customer); ``attrs["threshold"]`` is the
    smallest CLV in the group.
    """
    if not 0.0 < top_share <= 1.0:
        raise InputError("top_share must be in (0, 1], e.g. 0.025 for the top 2.5 %")
    values = _checked(clv)
    count = max(1, math.ceil(top_share * len(values) - 1e-9))
    ordered = pd.DataFrame(
        {"customer_id": values.index.astype("str"), "clv": values.to_numpy()}
    ).sort_values(["clv", "customer_id"], ascending=[False, True], kind="stable")
    top = ordered.head(count).set_index("customer_id")
    top["rank"] = np.arange(1, count + 1, dtype=np.int64)
    total = float(values.clip(lower=0).sum())
    top["clv_share"] = top["clv"] / total * 100 if total > 0 else math.nan
    top.attrs = {"threshold": float(top["clv"].iloc[-1]), "top_share": top_share}
    return top


def retention_spend_ceiling(clv: pd.Series, fraction: float = 0.1) -> pd.Series:
    """Per-customer ceiling on retention spend: ``fraction`` × predicted CLV (0 when CLV ≤ 0).

    ``fraction`` must be below 1: spending a customer's whole future value to keep them leaves
    nothing, which is exactly what seed 000 warns against.
    """
    if not 0.0 < fraction < 1.0:
        raise InputError("fraction must be between 0 and 1 (spend must stay below CLV)")
    values = _checked(clv)
    ceiling = values.clip(lower=0.0) * fraction
    ceiling.name = "retention_spend_ceiling"
    return ceiling
