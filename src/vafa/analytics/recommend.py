"""Product recommendations from co-purchases, and how many customers bought a product lately.

"Customers who bought X also bought Y": item-to-item similarity over *customers* (not orders,
so a customer who buys tea in spring and cups in autumn still links the two), the approach of
Linden, Smith and York, "Amazon.com recommendations: item-to-item collaborative filtering"
(IEEE Internet Computing, 2003). With B the binary customers × products matrix of who bought
what, the co-buyers of two products are ``C = Bᵀ B`` and their similarity is the cosine

    sim(x, y) = C[x, y] / sqrt(C[x, x] · C[y, y])

(``C[x, x]`` is the number of buyers of x). Pairs with fewer than ``min_support`` co-buyers are
dropped: two customers are an anecdote, not a pattern. Each product keeps its ``top`` most
similar products, which is all a message needs: a customer's recommendations are the products
most similar to what they bought, summed over their purchases, minus what they already own
(`recommend_for`). The matrix product is sparse (scipy), so a shop with a million customers and
tens of thousands of products is computed in seconds.

`popular_products` counts distinct buyers per product over the last ``days`` days: the social
proof of a message ("1,240 customers bought this this month").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from vafa.analytics.errors import InputError
from vafa.analytics.io import DateLike, day_number, day_numbers

__all__ = ["popular_products", "recommend_for", "similar_products"]

SIMILAR_COLUMNS = ["product_id", "similar_id", "score", "co_buyers"]


def _purchases(lines: pd.DataFrame) -> pd.DataFrame:
    missing = {"customer_id", "product_id"} - set(lines.columns)
    if missing:
        raise InputError(f"purchase lines need the columns {sorted(missing)}")
    return lines[["customer_id", "product_id"]].dropna().drop_duplicates()


def similar_products(
    lines: pd.DataFrame, *, top: int = 10, min_support: int = 2
) -> pd.DataFrame:
    """For each product, its `top` most similar products by the cosine of their buyers.

    `lines`: one row per purchased product with `customer_id` and `product_id` (order lines
    joined to their orders; refunded purchases left out by the caller). Returns columns
    `product_id`, `similar_id`, `score` (cosine, 0–1), `co_buyers`, sorted by product then
    descending score (ties by id, so the result is the same on every run).
    """
    if top < 1 or min_support < 1:
        raise InputError("top and min_support must be at least 1")
    bought = _purchases(lines)
    if bought.empty:
        return pd.DataFrame(columns=SIMILAR_COLUMNS)
    customers, customer_index = np.unique(bought["customer_id"].to_numpy(), return_inverse=True)
    products, product_index = np.unique(bought["product_id"].to_numpy(), return_inverse=True)
    incidence = sparse.csr_matrix(
        (np.ones(len(bought), dtype=np.float64), (customer_index, product_index)),
        shape=(len(customers), len(products)),
    )
    co = (incidence.T @ incidence).tocoo()
    buyers = np.asarray(incidence.sum(axis=0)).ravel()
    keep = (co.row != co.col) & (co.data >= min_support)
    rows, cols, counts = co.row[keep], co.col[keep], co.data[keep]
    if len(rows) == 0:
        return pd.DataFrame(columns=SIMILAR_COLUMNS)
    scores = counts / np.sqrt(buyers[rows] * buyers[cols])
    frame = pd.DataFrame({
        "product_id": products[rows], "similar_id": products[cols],
        "score": scores, "co_buyers": counts.astype(np.int64),
    })
    frame = frame.sort_values(["product_id", "score", "similar_id"],
                              ascending=[True, False, True], kind="stable")
    return frame.groupby("product_id", sort=False).head(top).reset_index(drop=True)


def recommend_for(
    similar: Mapping[object, Sequence[tuple[object, float]]],
    bought: Iterable[object],
    *,
    k: int = 3,
    fallback: Sequence[object] = (),
) -> list[object]:
    """Up to `k` products for a customer who bought `bought`: the sum of each candidate's
    similarity to the products bought (the more of their purchases point at it, the higher),
    never a product already bought; then `fallback` (e.g. the most popular products) to fill.

    `similar` maps a product to its `(similar_id, score)` list, as `similar_products` gives.
    """
    owned = set(bought)
    totals: dict[object, float] = {}
    for product in owned:
        for other, score in similar.get(product, ()):
            if other not in owned:
                totals[other] = totals.get(other, 0.0) + float(score)
    ranked = sorted(totals, key=lambda p: (-totals[p], str(p)))[:k]
    for product in fallback:
        if len(ranked) >= k:
            break
        if product not in owned and product not in ranked:
            ranked.append(product)
    return ranked


def popular_products(
    lines: pd.DataFrame,
    *,
    as_of: DateLike,
    days: int = 30,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Distinct buyers per product in the `days` local days up to and including `as_of`
    (columns `product_id`, `buyers`, most bought first). `lines` needs `placed_at` too."""
    if days < 1:
        raise InputError("days must be at least 1")
    if "placed_at" not in lines.columns:
        raise InputError("purchase lines need the column 'placed_at'")
    end = day_number(as_of, tz)
    when = day_numbers(lines["placed_at"], tz)
    recent = lines[(when > end - days) & (when <= end)]
    counts = (
        _purchases(recent).groupby("product_id").size().rename("buyers").reset_index()
        if len(recent) else pd.DataFrame({"product_id": [], "buyers": []})
    )
    counts["buyers"] = counts["buyers"].astype(np.int64)
    return counts.sort_values(["buyers", "product_id"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)
