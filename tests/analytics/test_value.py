"""VIP lists and retention spend ceilings from predicted CLV (A3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vafa.analytics.errors import InputError
from vafa.analytics.value import retention_spend_ceiling, vip_customers


def test_vips_are_the_top_share_by_clv_rounded_up() -> None:
    clv = pd.Series(np.arange(1, 201, dtype=float), index=[f"c{i:03d}" for i in range(1, 201)])

    vips = vip_customers(clv, top_share=0.025)

    assert len(vips) == 5  # ⌈0.025 × 200⌉
    assert list(vips.index) == ["c200", "c199", "c198", "c197", "c196"]
    assert vips["rank"].tolist() == [1, 2, 3, 4, 5]
    assert vips.attrs["threshold"] == 196.0
    assert vips["clv_share"].iloc[0] == pytest.approx(200 / clv.sum() * 100)


def test_a_small_shop_still_gets_one_vip_and_ties_break_by_id() -> None:
    clv = pd.Series({"b": 10.0, "a": 10.0, "c": 1.0})

    vips = vip_customers(clv, top_share=0.02)

    assert list(vips.index) == ["a"]


def test_the_spend_ceiling_is_a_fraction_of_positive_clv() -> None:
    clv = pd.Series({"a": 200.0, "b": -5.0, "c": 0.0})

    ceiling = retention_spend_ceiling(clv, fraction=0.1)

    assert ceiling.to_dict() == {"a": 20.0, "b": 0.0, "c": 0.0}
    assert ceiling.name == "retention_spend_ceiling"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: vip_customers(pd.Series({"a": 1.0}), top_share=0), "top_share"),
        (lambda: retention_spend_ceiling(pd.Series({"a": 1.0}), fraction=1.0), "below CLV"),
        (lambda: vip_customers(pd.Series({"a": np.nan})), "customer 'a'"),
        (lambda: vip_customers(pd.Series([], dtype=float)), "empty"),
        (lambda: vip_customers([1.0, 2.0]), "pandas Series"),
    ],
)
def test_it_refuses_unusable_input(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]
