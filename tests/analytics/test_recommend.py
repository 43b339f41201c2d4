"""Item-to-item recommendations and social proof, checked by hand on a tiny shop.

Buyers: tea {ana, bahram, sara}, cup {ana, bahram, reza}, saffron {sara}, honey {ana, bahram}.
Co-buyers: tea·cup = 2 (ana, bahram), tea·honey = 2, cup·honey = 2, tea·saffron = 1 (below the
support of 2). Cosines: tea·cup = 2/√(3·3) = 0.6667, tea·honey = 2/√(3·2) = 0.8165,
cup·honey = 0.8165.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vafa.analytics.errors import InputError
from vafa.analytics.recommend import popular_products, recommend_for, similar_products

LINES = pd.DataFrame(
    [
        ("ana", "tea", "2025-05-01"), ("ana", "cup", "2025-05-01"), ("ana", "honey", "2025-05-20"),
        ("bahram", "tea", "2025-04-01"), ("bahram", "cup", "2025-05-02"),
        ("bahram", "honey", "2025-05-03"), ("bahram", "tea", "2025-05-04"),  # a repeat
        ("sara", "tea", "2025-03-01"), ("sara", "saffron", "2025-05-30"),
        ("reza", "cup", "2025-05-31"),
    ],
    columns=["customer_id", "product_id", "placed_at"],
).assign(placed_at=lambda f: pd.to_datetime(f["placed_at"], utc=True))


def test_similar_products_are_the_cosine_of_their_buyers_above_the_support() -> None:
    similar = similar_products(LINES)
    tea = similar[similar["product_id"] == "tea"]
    assert tea["similar_id"].tolist() == ["honey", "cup"]  # saffron: one co-buyer only
    assert tea["score"].tolist() == pytest.approx([2 / math.sqrt(6), 2 / 3])
    assert tea["co_buyers"].tolist() == [2, 2]
    assert similar_products(LINES, min_support=1).query("product_id == 'tea'")[
        "similar_id"].tolist() == ["honey", "cup", "saffron"]
    assert similar_products(LINES, top=1).groupby("product_id").size().max() == 1


def test_a_customer_gets_what_their_purchases_point_at_never_what_they_own() -> None:
    frame = similar_products(LINES)
    similar = {p: list(zip(g["similar_id"], g["score"], strict=True))
               for p, g in frame.groupby("product_id")}
    # sara owns tea: honey (0.8165) before cup (0.6667); saffron is hers already
    assert recommend_for(similar, ["tea", "saffron"], k=3) == ["honey", "cup"]
    # reza owns cup: honey then tea; popularity fills up to k without repeating
    assert recommend_for(similar, ["cup"], k=3, fallback=["tea", "saffron", "cup"]) == [
        "honey", "tea", "saffron"]
    assert recommend_for(similar, [], k=2, fallback=["tea", "cup", "honey"]) == ["tea", "cup"]


def test_popularity_counts_distinct_buyers_in_the_last_days() -> None:
    popular = popular_products(LINES, as_of="2025-05-31", days=30)
    # 2025-05-02 … 2025-05-31: cup (bahram, reza), honey (ana, bahram), tea (bahram), saffron
    assert list(zip(popular["product_id"], popular["buyers"], strict=True)) == [
        ("cup", 2), ("honey", 2), ("saffron", 1), ("tea", 1)]


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match="product_id"):
        similar_products(LINES.drop(columns="product_id"))
    with pytest.raises(InputError, match="placed_at"):
        popular_products(LINES.drop(columns="placed_at"), as_of="2025-05-31")
    assert similar_products(LINES.iloc[:0]).empty
