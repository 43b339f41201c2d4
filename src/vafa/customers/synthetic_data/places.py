"""Iranian cities for the synthetic shop: Persian name, approximate population and shipping cost.

Populations are the 2016 national census figures (Statistical Centre of Iran), rounded to thousands;
they only set relative weights, so a few years' drift does not matter. The shipping cost (Toman) is a
flat post-and-courier rate of the kind Iranian shops charge: cheapest in Tehran, dearer far away.
"""

from __future__ import annotations

from typing import NamedTuple


class City(NamedTuple):
    """A city a customer can live in."""

    name: str
    population_thousands: int
    shipping_toman: int
    arabic_share: float = 0.01


CITIES: tuple[City, ...] = (
    City("تهران", 8694, 39_000),
    City("مشهد", 3001, 59_000),
    City("اصفهان", 1961, 55_000),
    City("کرج", 1592, 45_000),
    City("شیراز", 1565, 59_000),
    City("تبریز", 1558, 59_000),
    City("قم", 1201, 49_000),
    City("اهواز", 1184, 65_000, arabic_share=0.25),
    City("کرمانشاه", 946, 59_000),
    City("ارومیه", 736, 65_000),
    City("رشت", 679, 55_000),
    City("زاهدان", 587, 79_000),
    City("همدان", 554, 55_000),
    City("کرمان", 537, 69_000),
    City("یزد", 529, 59_000),
    City("اردبیل", 529, 65_000),
    City("بندرعباس", 526, 75_000, arabic_share=0.05),
    City("اراک", 520, 55_000),
    City("اسلامشهر", 448, 45_000),
    City("زنجان", 430, 55_000),
    City("سنندج", 412, 65_000),
    City("قزوین", 402, 49_000),
    City("خرم‌آباد", 373, 65_000),
    City("گرگان", 350, 59_000),
    City("ساری", 309, 55_000),
    City("کاشان", 304, 55_000),
    City("دزفول", 264, 65_000, arabic_share=0.08),
    City("بابل", 250, 55_000),
    City("سبزوار", 243, 65_000),
    City("آمل", 237, 55_000),
    City("نجف‌آباد", 235, 55_000),
    City("بروجرد", 234, 59_000),
    City("بوشهر", 223, 75_000, arabic_share=0.05),
    City("بیرجند", 203, 79_000),
    City("ساوه", 220, 55_000),
    City("بجنورد", 228, 69_000),
    City("قائم‌شهر", 204, 55_000),
    City("شهرکرد", 190, 65_000),
    City("سمنان", 185, 55_000),
    City("یاسوج", 134, 75_000),
    City("ایلام", 194, 75_000),
    City("کیش", 40, 89_000),
)
