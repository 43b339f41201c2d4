"""A believable synthetic Iranian online shop, written as the canonical CSV files.

Why: the demo, the tests of the importers and the analytics, and the benchmarks all need a shop
whose customers behave like real ones *and* whose latent truth is known, so that a model's estimate
of "is this customer still alive?" can be checked against the answer.

The behaviour model is Pareto/NBD (Schmittlein, Morrison & Colombo 1987, "Counting your customers"):

- each customer has a purchase rate λ ~ Gamma(shape r, rate α) per day and, independently, a
  dropout rate μ ~ Gamma(shape s, rate β) per day;
- after the first purchase, the customer stays alive for an exponential lifetime with rate μ and,
  while alive, buys as a Poisson process. Here that process is non-homogeneous: its intensity is
  λ · season(t) · diurnal(t), where both factors average one (season over the simulated window,
  diurnal over a day), so λ keeps its meaning of "purchases per day on average". It is sampled by
  thinning (Lewis & Shedler 1979): candidates at the peak rate, each kept with probability
  intensity(t) / peak, which keeps it an exact non-homogeneous Poisson process;
- signups spread over the window (growing shop, busier before holidays); a share `conversion` of
  signups place a first order at or soon after signup, the others never buy (their ground truth
  is `purchase_rate = 0` and `dropout_at = signup_at`, although they may browse for a few weeks).

`ground_truth.csv` holds λ, the dropout time when it falls inside the window (else empty) and
`alive_at_end`, true exactly when `dropout_at` is empty. Cancelled and refunded orders are purchases
of the process like any other: drop them before fitting if the analysis should ignore them.

Conventions of the files: UTF-8 without BOM, `\\n` line ends, a header row; datetimes ISO 8601 in
UTC with `Z`; money in whole Toman (`IRT`) as plain integers; for every order
`total = Σ quantity × unit_price − discount + shipping`, whatever its status (the amount charged at
checkout; a later refund shows in `status`, not in `total`). E-mail addresses use the reserved
`.example` top-level domain (RFC 2606), e.g. `sara.ahmadi4821@gmail.example`, so a demo can never
mail a real person; about a third of customers have no e-mail at all, as Iranian shops sign people
up by mobile number. Phones are unique valid Iranian mobile numbers in E.164.

Reproducibility: every random draw comes from numpy Generators seeded from `seed` (one for the
catalogue and signup calendar, one per chunk of customers), and outputs are sorted explicitly, so
the same seed, customer count and end date give the same bytes on the same platform. Customers are
simulated and written a chunk of about ten thousand at a time, so a million customers need little
memory; identifiers are numbered in file order (customers by signup time; orders, events and
tickets by customer, then time).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from vafa.customers.synthetic_data.calendar import black_friday, nowruz, yalda
from vafa.customers.synthetic_data.catalogue import AFFINITY, ITEMS, KINDS
from vafa.customers.synthetic_data.names import FEMALE_FIRST_NAMES, LAST_NAMES, MALE_FIRST_NAMES
from vafa.customers.synthetic_data.places import CITIES

DEFAULT_END = date(2026, 9, 30)
MAX_CUSTOMERS = 10_000_000  # phone subscriber numbers are a permutation of 10**7 values
CURRENCY = "IRT"
TIMEZONE = "Asia/Tehran"
# Asia/Tehran has been UTC+03:30 all year since Iran abolished daylight saving time in 2022.
TEHRAN_OFFSET = 12_600
DAY = 86_400
HOUR = 3_600
CHUNK_CUSTOMERS = 10_000

CANONICAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "gender",
        "birth_date",
        "city",
        "country",
        "language",
        "timezone",
        "signup_at",
        "acquisition_source",
        "accepts_email",
        "accepts_sms",
    ),
    "products": ("product_id", "name", "category", "price"),
    "orders": (
        "order_id",
        "customer_id",
        "placed_at",
        "status",
        "total",
        "currency",
        "discount",
        "shipping",
        "channel",
    ),
    "order_lines": ("order_id", "product_id", "quantity", "unit_price"),
    "events": ("customer_id", "type", "occurred_at", "properties"),
    "tickets": (
        "ticket_id",
        "customer_id",
        "opened_at",
        "first_response_at",
        "resolved_at",
        "channel",
        "subject",
        "satisfaction",
    ),
    "ground_truth": ("customer_id", "purchase_rate", "dropout_at", "alive_at_end"),
}

ORDER_STATUSES = ("paid", "refunded", "partially_refunded", "cancelled")
ORDER_CHANNELS = ("web", "app", "instagram")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart")
TICKET_CHANNELS = ("chat", "phone", "email", "telegram")
ACQUISITION_SOURCES = (
    "organic_search",
    "instagram",
    "google_ads",
    "referral",
    "telegram",
    "direct",
    "affiliate",
    "email",
)
# Share of signups per source, and how strongly each source attracts loyal customers: sources
# are drawn *after* λ and μ, tilted by a loyalty score, so the marginal gamma laws stay exact.
_SOURCE_SHARE = np.array([0.25, 0.2, 0.1, 0.1, 0.08, 0.15, 0.05, 0.07])
_SOURCE_LOYALTY = np.array([0.1, -0.25, -0.15, 0.45, 0.0, 0.2, -0.35, 0.25])
_EMAIL_DOMAINS = ("gmail.example", "yahoo.example", "chmail.example", "outlook.example")
_EMAIL_DOMAIN_SHARE = np.array([0.62, 0.14, 0.14, 0.1])
# Iranian mobile prefixes (after +98) of the three operators, with rough market shares.
_MOBILE_PREFIXES = tuple(
    "912 913 914 915 916 917 918 919 911 910 990 991 992 "  # Hamrah-e Aval
    "935 936 937 938 939 930 933 901 902 903 905 "  # Irancell
    "920 921 922".split()  # Rightel
)
# fmt: off
_MOBILE_SHARE = np.array([9, 5, 4, 4, 3, 3, 3, 5, 3, 3, 4, 3, 2,
                          6, 5, 4, 4, 3, 3, 3, 5, 4, 3, 2,
                          2, 1, 1], dtype=float)
# Local hour-of-day shape of online shopping in Iran: quiet at dawn, busiest late evening.
_DIURNAL = np.array([0.9, 0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.45, 0.7, 0.9, 1.0, 1.05,
                     1.0, 0.95, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 1.65, 1.6, 1.3])
# fmt: on
_DIURNAL = _DIURNAL / _DIURNAL.mean()

# Calendar periods that change how much and what people buy.
_QUIET, _NOWRUZ_RUSH, _NOWRUZ_HOLIDAYS, _YALDA, _BLACK_FRIDAY, _BACK_TO_SCHOOL, _SUMMER = range(7)
_PERIOD_DISCOUNT_SHARE = np.array([0.08, 0.25, 0.1, 0.22, 0.45, 0.12, 0.12])
_KIND_SLUGS = tuple(kind.slug for kind in KINDS)
_PERIOD_KIND_TILT: dict[int, dict[str, float]] = {
    _NOWRUZ_RUSH: {"clothing": 2.2, "kitchen": 1.3, "toys": 1.3, "digital": 1.5, "cosmetics": 1.2},
    _YALDA: {"books": 2.0, "kitchen": 1.3, "digital": 1.3},
    _BLACK_FRIDAY: {"phone": 1.8, "laptop": 1.8, "appliance": 1.6, "phone_accessory": 1.3},
    _BACK_TO_SCHOOL: {"laptop": 1.6, "computer_accessory": 1.5, "books": 1.3},
    _SUMMER: {"sports": 1.5},
}
_MAX_QUANTITY = 9
_FREE_SHIPPING_FROM = 5_000_000  # Toman, after discount
_TICKET_SUBJECTS: dict[str, tuple[str, ...]] = {
    "paid": (
        "پیگیری سفارش",
        "تأخیر در ارسال",
        "درخواست فاکتور رسمی",
        "سؤال درباره گارانتی",
        "مغایرت کالای ارسالی",
    ),
    "cancelled": ("لغو سفارش", "مشکل در پرداخت", "بازگشت وجه سفارش لغوشده"),
    "refunded": ("درخواست مرجوعی کالا", "کالای آسیب‌دیده", "بازگشت وجه"),
    "partially_refunded": ("مرجوعی بخشی از سفارش", "کسری کالا در مرسوله", "کالای آسیب‌دیده"),
    "browsing": ("سؤال درباره کالا", "مشکل ورود به حساب", "استعلام موجودی"),
}

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class ShopParameters:
    """Latent behaviour of the simulated customers, per day (Pareto/NBD; see the module doc).

    The defaults give an average customer about 4.4 purchases a year while alive (r/α = 0.012 a
    day) and a mean dropout rate of one in 300 days (s/β), heavy-tailed as in published fits
    (CDNOW's r=0.55, α=10.6 weeks, s=0.61, β=11.7 weeks is the same order of magnitude).
    """

    r: float = 0.9
    alpha: float = 75.0
    s: float = 0.7
    beta: float = 210.0
    conversion: float = 0.7
    horizon_days: int = 730

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "s", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.conversion <= 1:
            raise ValueError("conversion must be between 0 and 1")
        if self.horizon_days < 60:
            raise ValueError("horizon_days must be at least 60")


@dataclass(frozen=True)
class ShopSummary:
    """What `generate_shop` wrote: one path and one row count (without header) per file."""

    out_dir: Path
    seed: int
    start: date
    end: date
    horizon_start: datetime
    horizon_end: datetime
    parameters: ShopParameters
    paths: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def generate_shop(
    out_dir: Path,
    *,
    customers: int,
    seed: int,
    end: date | None = None,
    parameters: ShopParameters | None = None,
) -> ShopSummary:
    """Write a synthetic shop of `customers` customers into `out_dir` and say what was written.

    The window covers `parameters.horizon_days` local (Asia/Tehran) days ending with `end`
    inclusive (default 2026-09-30, fixed so that output does not depend on today's date).
    """
    if isinstance(end, datetime):
        raise TypeError("end must be a date, not a datetime")
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS:,}")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    params = parameters or ShopParameters()
    end = end or DEFAULT_END
    calendar = _Calendar(end, params.horizon_days)
    setup_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    catalogue = _Catalogue.draw(setup_rng)
    day_counts = setup_rng.multinomial(customers, calendar.signup_weights())
    identity = _Identity.draw(setup_rng, customers)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.csv" for name in CANONICAL_COLUMNS}
    counts = dict.fromkeys(CANONICAL_COLUMNS, 0)
    with ExitStack() as stack:
        writers: dict[str, Any] = {}
        handles: dict[str, TextIO] = {}
        for name, path in paths.items():
            handles[name] = stack.enter_context(path.open("w", encoding="utf-8", newline=""))
            writers[name] = csv.writer(handles[name], lineterminator="\n")
            writers[name].writerow(CANONICAL_COLUMNS[name])
        counts["products"] = catalogue.write(writers["products"])
        numbering = _Numbering()
        for chunk_no, (first, stop) in enumerate(_chunks(day_counts)):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, chunk_no)))
            chunk = _ChunkSimulation(
                rng, calendar, catalogue, identity, params, day_counts, first, stop
            )
            for name, rows in chunk.write(writers, handles, numbering).items():
                counts[name] += rows
    return ShopSummary(
        out_dir=out_dir,
        seed=seed,
        start=calendar.start,
        end=end,
        horizon_start=_to_datetime(calendar.t_start),
        horizon_end=_to_datetime(calendar.t_end),
        parameters=params,
        paths=paths,
        counts=counts,
    )


def _to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _chunks(day_counts: IntArray) -> Iterator[tuple[int, int]]:
    """Ranges of customer indices of about `CHUNK_CUSTOMERS`, cut at day boundaries so that
    customer numbers follow signup time across chunks."""
    day_ends = np.cumsum(day_counts)
    total = int(day_ends[-1])
    first = 0
    while first < total:
        stop = min(first + CHUNK_CUSTOMERS, total)
        if stop < total:
            day = int(np.searchsorted(day_ends, stop - 1, side="right"))
            stop = int(day_ends[day])
        yield first, stop
        first = stop


class _Calendar:
    """The simulated window and the seasonal shape of shopping inside it.

    Time is kept as float seconds since the Unix epoch (UTC); days and hours for the seasonal
    lookup are local Tehran days and hours counted from the window's first local midnight.
    """

    def __init__(self, end: date, horizon_days: int) -> None:
        self.end = end
        self.n_days = horizon_days
        self.start = end - timedelta(days=horizon_days - 1)
        epoch_day = (self.start - date(1970, 1, 1)).days
        self.t_start = float(epoch_day * DAY - TEHRAN_OFFSET)
        self.t_end = self.t_start + horizon_days * DAY
        self.period = np.zeros(horizon_days, dtype=np.int64)
        season = np.ones(horizon_days)
        for year in range(self.start.year - 1, end.year + 2):
            self._mark(season, date(year, 7, 1), date(year, 8, 31), _SUMMER, 0.85)
            self._mark(season, date(year, 9, 6), date(year, 9, 22), _BACK_TO_SCHOOL, 1.15)
            new_year = nowruz(year)
            for days_before in range(1, 15):
                boost = 1 + 1.4 * (1 - 0.5 * (days_before - 1) / 13)
                day = new_year - timedelta(days=days_before)
                self._mark(season, day, day, _NOWRUZ_RUSH, boost)
            self._mark(season, new_year, new_year + timedelta(days=12), _NOWRUZ_HOLIDAYS, 0.6)
            night = yalda(year)
            self._mark(season, night - timedelta(days=7), night, _YALDA, 1.6)
            friday = black_friday(year)
            self._mark(
                season, friday - timedelta(days=7), friday - timedelta(days=1), _BLACK_FRIDAY, 1.3
            )
            self._mark(season, friday, friday + timedelta(days=3), _BLACK_FRIDAY, 2.2)
        self.season = season / season.mean()
        self.hourly = (self.season[:, None] * _DIURNAL[None, :]).ravel()
        self.peak = float(self.hourly.max())

    def _mark(
        self, season: FloatArray, first: date, last: date, period: int, factor: float
    ) -> None:
        lo = max((first - self.start).days, 0)
        hi = min((last - self.start).days + 1, self.n_days)
        if lo < hi:
            season[lo:hi] = factor
            self.period[lo:hi] = period

    def signup_weights(self) -> FloatArray:
        """Share of signups per day: a shop growing 80% over the window, busier before holidays."""
        growth = np.exp(math.log(1.8) * np.arange(self.n_days) / self.n_days)
        weights = growth * self.season**0.6
        result: FloatArray = weights / weights.sum()
        return result

    def day_of(self, t: FloatArray) -> IntArray:
        """Local day index in the window of each time (clipped to the window)."""
        days = np.floor((t - self.t_start) / DAY).astype(np.int64)
        return np.clip(days, 0, self.n_days - 1)

    def intensity(self, t: FloatArray) -> FloatArray:
        """season × diurnal factor at each time; it averages one over the window."""
        hours = np.clip(
            np.floor((t - self.t_start) / HOUR).astype(np.int64), 0, self.hourly.size - 1
        )
        result: FloatArray = self.hourly[hours]
        return result

    def poisson_times(
        self, rng: np.random.Generator, rate: FloatArray, start: FloatArray, stop: FloatArray
    ) -> tuple[IntArray, FloatArray]:
        """Event times of independent processes with intensity rate[i] × season × diurnal per day
        on [start[i], stop[i]), by thinning; returns (owner index, time) sorted by owner, time."""
        span = np.clip(stop - start, 0.0, None)
        candidates = rng.poisson(rate * self.peak * span / DAY)
        owner = np.repeat(np.arange(rate.size, dtype=np.int64), candidates)
        times = start[owner] + rng.random(owner.size) * span[owner]
        keep = rng.random(owner.size) * self.peak < self.intensity(times)
        owner, times = owner[keep], times[keep]
        order = np.lexsort((times, owner))
        return owner[order], times[order]


@dataclass(frozen=True)
class _Catalogue:
    """Products with drawn prices and popularity, grouped by kind."""

    product_ids: NDArray[np.object_]
    names: tuple[str, ...]
    kind: IntArray
    price: IntArray
    cumulative: FloatArray  # running popularity, products grouped by kind
    kind_lo: FloatArray  # cumulative popularity before each kind's first product
    kind_hi: FloatArray
    kind_first: IntArray
    kind_last: IntArray
    preference_base: FloatArray
    affinity_cumulative: FloatArray
    period_tilt: FloatArray
    more_lines: FloatArray
    bulk: NDArray[np.bool_]
    digital: NDArray[np.bool_]
    properties_csv: NDArray[np.object_]  # see `_properties_table`

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Catalogue:
        kind_index = {slug: i for i, slug in enumerate(_KIND_SLUGS)}
        items = sorted(ITEMS, key=lambda item: kind_index[item.kind])  # stable: keeps list order
        kind = np.array([kind_index[item.kind] for item in items], dtype=np.int64)
        low = np.array([item.low for item in items], dtype=float) * 1000
        high = np.array([item.high for item in items], dtype=float) * 1000
        raw = np.exp(np.log(low) + rng.random(len(items)) * (np.log(high) - np.log(low)))
        # Shops price like 1,249,000: round up to ten thousand and take a thousand off, within range.
        charm = np.ceil(raw / 10_000) * 10_000 - 1_000
        price = np.where(charm >= low, charm, np.round(raw / 1000) * 1000)
        price = np.where(low == high, low, np.clip(price, low, high)).astype(np.int64)
        popularity = np.empty(len(items))
        for k in range(len(KINDS)):
            members = np.flatnonzero(kind == k)
            ranks = rng.permutation(members.size)
            popularity[members] = 1.0 / (ranks + 1.0) ** 0.9
            popularity[members] /= popularity[members].sum()
        cumulative = np.cumsum(popularity)
        kind_first = np.array([np.flatnonzero(kind == k)[0] for k in range(len(KINDS))])
        kind_last = np.array([np.flatnonzero(kind == k)[-1] for k in range(len(KINDS))])
        kind_hi = cumulative[kind_last]
        kind_lo = kind_hi - np.array([popularity[kind == k].sum() for k in range(len(KINDS))])
        affinity = np.full((len(KINDS), len(KINDS)), 0.02)
        for slug, row in AFFINITY.items():
            for other, weight in row.items():
                affinity[kind_index[slug], kind_index[other]] += weight
        affinity /= affinity.sum(axis=1, keepdims=True)
        tilt = np.ones((7, len(KINDS)))
        for period, row in _PERIOD_KIND_TILT.items():
            for slug, factor in row.items():
                tilt[period, kind_index[slug]] = factor
        base = np.array([k.popularity for k in KINDS])
        return cls(
            product_ids=np.array([f"P{i + 1:04d}" for i in range(len(items))], dtype=object),
            names=tuple(item.name for item in items),
            kind=kind,
            price=price,
            cumulative=cumulative,
            kind_lo=kind_lo,
            kind_hi=kind_hi,
            kind_first=kind_first,
            kind_last=kind_last,
            preference_base=base / base.sum(),
            affinity_cumulative=np.cumsum(affinity, axis=1),
            period_tilt=tilt,
            more_lines=np.array([k.more_lines for k in KINDS]),
            bulk=np.array([k.bulk for k in KINDS]),
            digital=np.array([k.digital for k in KINDS]),
            properties_csv=_properties_table(len(items)),
        )

    def write(self, writer: Any) -> int:
        categories = [KINDS[k].category for k in self.kind]
        writer.writerows(
            zip(
                self.product_ids.tolist(),
                self.names,
                categories,
                self.price.astype(str).tolist(),
                strict=True,
            )
        )
        return len(self.names)

    def pick_products(self, rng: np.random.Generator, kinds: IntArray) -> IntArray:
        """One product of each given kind, by popularity."""
        target = self.kind_lo[kinds] + rng.random(kinds.size) * (
            self.kind_hi[kinds] - self.kind_lo[kinds]
        )
        picked = np.searchsorted(self.cumulative, target, side="right").astype(np.int64)
        result: IntArray = np.clip(picked, self.kind_first[kinds], self.kind_last[kinds])
        return result


@dataclass(frozen=True)
class _Identity:
    """Bijections that turn a customer's number into a unique phone and e-mail suffix."""

    phone_offset: int
    email_offset: int
    email_modulus: int

    @classmethod
    def draw(cls, rng: np.random.Generator, customers: int) -> _Identity:
        modulus = 10 ** max(3, math.ceil(math.log10(4 * customers)))
        return cls(int(rng.integers(10**7)), int(rng.integers(modulus)), modulus)

    def subscriber(self, index: IntArray) -> IntArray:
        # 7_654_321 is coprime with 10**7, so this is a permutation of 0..10**7-1.
        result: IntArray = (index * 7_654_321 + self.phone_offset) % 10**7
        return result

    def email_number(self, index: IntArray) -> IntArray:
        # 7_919 is prime and not 2 or 5, so coprime with the power-of-ten modulus.
        result: IntArray = (index * 7_919 + self.email_offset) % self.email_modulus
        return result


@dataclass
class _Numbering:
    """Running identifiers across chunks."""

    orders: int = 0
    tickets: int = 0


def _rank_weights(n: int, exponent: float = 0.9) -> FloatArray:
    weights = 1.0 / (np.arange(n) + 2.0) ** exponent
    result: FloatArray = weights / weights.sum()
    return result


def _iso(seconds: FloatArray) -> list[str]:
    """ISO 8601 UTC strings with `Z`, truncated to the second."""
    stamps = np.floor(seconds).astype(np.int64).astype("datetime64[s]")
    text = np.strings.add(np.datetime_as_string(stamps, unit="s"), "Z")
    result: list[str] = text.tolist()
    return result


def _sample_rows(rng: np.random.Generator, cumulative: FloatArray) -> IntArray:
    """One column index per row of a row-wise cumulative weight matrix."""
    target = rng.random(cumulative.shape[0]) * cumulative[:, -1]
    result: IntArray = (cumulative < target[:, None]).sum(axis=1).astype(np.int64)
    return np.minimum(result, cumulative.shape[1] - 1)


_CITY_WEIGHTS = np.array([c.population_thousands for c in CITIES], dtype=float)
_CITY_WEIGHTS[0] *= 1.4  # Tehran buys online more than its population share
_CITY_WEIGHTS /= _CITY_WEIGHTS.sum()
_CITY_SHIPPING = np.array([c.shipping_toman for c in CITIES], dtype=np.int64)
_CITY_ARABIC = np.array([c.arabic_share for c in CITIES])
_MALE_WEIGHTS = _rank_weights(len(MALE_FIRST_NAMES))
_FEMALE_WEIGHTS = _rank_weights(len(FEMALE_FIRST_NAMES))
_LAST_WEIGHTS = _rank_weights(len(LAST_NAMES), 0.6)
_AGE_BANDS = np.array([[18, 25], [25, 35], [35, 45], [45, 55], [55, 71]])
_AGE_SHARE = np.array([0.24, 0.38, 0.22, 0.1, 0.06])


def _json_object(**values: object) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


class _ChunkSimulation:
    """Customers `first..stop-1` with everything they do; written with `write`."""

    def __init__(
        self,
        rng: np.random.Generator,
        calendar: _Calendar,
        catalogue: _Catalogue,
        identity: _Identity,
        params: ShopParameters,
        day_counts: IntArray,
        first: int,
        stop: int,
    ) -> None:
        self.rng = rng
        self.cal = calendar
        self.cat = catalogue
        self.identity = identity
        self.params = params
        self.index = np.arange(first, stop, dtype=np.int64)
        self.n = stop - first
        self.signup_day = np.searchsorted(np.cumsum(day_counts), self.index, side="right")
        self._customers()
        self._behaviour()
        self._orders()
        self._events()
        self._tickets()

    # customers -----------------------------------------------------------------------------

    def _customers(self) -> None:
        rng, n = self.rng, self.n
        hour = rng.choice(24, size=n, p=_DIURNAL / _DIURNAL.sum())
        second_of_day = hour * HOUR + rng.random(n) * HOUR
        order = np.lexsort((second_of_day, self.signup_day))
        self.signup = self.cal.t_start + self.signup_day * DAY + second_of_day[order]
        self.female = rng.random(n) < 0.5
        self.first_name_idx = np.where(
            self.female,
            rng.choice(len(FEMALE_FIRST_NAMES), size=n, p=_FEMALE_WEIGHTS),
            rng.choice(len(MALE_FIRST_NAMES), size=n, p=_MALE_WEIGHTS),
        )
        self.last_name_idx = rng.choice(len(LAST_NAMES), size=n, p=_LAST_WEIGHTS)
        self.city = rng.choice(len(CITIES), size=n, p=_CITY_WEIGHTS)
        band = rng.choice(len(_AGE_SHARE), size=n, p=_AGE_SHARE)
        age_years = _AGE_BANDS[band, 0] + rng.random(n) * (
            _AGE_BANDS[band, 1] - _AGE_BANDS[band, 0]
        )
        signup_epoch_day = np.floor((self.signup + TEHRAN_OFFSET) / DAY)
        self.birth_day = (signup_epoch_day - np.floor(age_years * 365.2425)).astype(np.int64)
        u = rng.random(n)
        arabic = _CITY_ARABIC[self.city]
        self.language = np.where(u < arabic, "ar", np.where(u < arabic + 0.03, "en", "fa"))
        self.has_email = rng.random(n) < 0.68
        self.email_pattern = rng.choice(4, size=n, p=[0.35, 0.25, 0.2, 0.2])
        self.email_domain = rng.choice(len(_EMAIL_DOMAINS), size=n, p=_EMAIL_DOMAIN_SHARE)
        self.phone_prefix = rng.choice(
            len(_MOBILE_PREFIXES), size=n, p=_MOBILE_SHARE / _MOBILE_SHARE.sum()
        )
        self.accepts_email = self.has_email & (rng.random(n) < 0.55)
        self.accepts_sms = rng.random(n) < 0.78
        # Category taste: a Dirichlet draw around the shop's mix, with a floor so that anyone can
        # occasionally buy anything.
        taste = rng.gamma(6.0 * self.cat.preference_base, 1.0, size=(n, len(KINDS)))
        taste /= np.maximum(taste.sum(axis=1, keepdims=True), 1e-300)
        self.taste = 0.85 * taste + 0.15 * self.cat.preference_base

    # latent process ------------------------------------------------------------------------

    def _behaviour(self) -> None:
        rng, n, p, cal = self.rng, self.n, self.params, self.cal
        self.rate = rng.gamma(p.r, 1.0 / p.alpha, size=n)
        self.dropout_rate = rng.gamma(p.s, 1.0 / p.beta, size=n)
        self.converts = rng.random(n) < p.conversion
        same_session = rng.random(n) < 0.55
        delay = np.where(
            same_session, 180 + rng.random(n) * 2_520, 600 + rng.exponential(5 * DAY, n)
        )
        self.first_purchase = self.signup + delay
        # Lifetimes are capped at about 270 years only to keep the arithmetic finite.
        lifetime = np.minimum(rng.exponential(1.0, n) / self.dropout_rate, 1e5) * DAY
        self.dropout = np.where(self.converts, self.first_purchase + lifetime, self.signup)
        self.buyer = self.converts & (self.first_purchase < cal.t_end)
        self.immediate = self.buyer & same_session
        # Sources are drawn after the latent rates so their laws stay exactly gamma, yet some
        # sources bring better customers: tilt by a standardised log(λ/μ).
        loyalty = np.log(self.rate) - np.log(self.dropout_rate)
        loyalty = (loyalty - loyalty.mean()) / max(float(loyalty.std()), 1e-9)
        weights = _SOURCE_SHARE[None, :] * np.exp(_SOURCE_LOYALTY[None, :] * loyalty[:, None])
        self.source = _sample_rows(rng, np.cumsum(weights, axis=1))
        instagram = self.source == ACQUISITION_SOURCES.index("instagram")
        main = rng.choice(3, size=n, p=[0.5, 0.42, 0.08])
        self.main_channel = np.where(instagram & (rng.random(n) < 0.6), 2, main)

    # orders and lines ----------------------------------------------------------------------

    def _orders(self) -> None:
        rng, cal, cat = self.rng, self.cal, self.cat
        buyers = np.flatnonzero(self.buyer)
        repeat_owner, repeat_time = cal.poisson_times(
            rng,
            self.rate[buyers],
            self.first_purchase[buyers],
            np.minimum(self.dropout[buyers], cal.t_end),
        )
        owner = np.concatenate([buyers, buyers[repeat_owner]])
        placed = np.concatenate([self.first_purchase[buyers], repeat_time])
        first_order = np.concatenate(
            [np.ones(buyers.size, bool), np.zeros(repeat_owner.size, bool)]
        )
        order = np.lexsort((placed, owner))
        owner, placed, first_order = owner[order], placed[order], first_order[order]
        n_orders = owner.size
        period = cal.period[cal.day_of(placed)]
        channel = np.where(
            rng.random(n_orders) < 0.8,
            self.main_channel[owner],
            rng.choice(3, size=n_orders, p=[0.5, 0.42, 0.08]),
        )

        # Basket: the first line's kind from the customer's taste tilted by the season, further
        # lines from the affinity row of that kind.
        weights = self.taste[owner] * cat.period_tilt[period]
        anchor = _sample_rows(rng, np.cumsum(weights, axis=1))
        extra = np.minimum(rng.geometric(1.0 - cat.more_lines[anchor]) - 1, 5)
        extra_order = np.repeat(np.arange(n_orders, dtype=np.int64), extra)
        extra_kind = _sample_rows(rng, cat.affinity_cumulative[anchor[extra_order]])
        line_order = np.concatenate([np.arange(n_orders, dtype=np.int64), extra_order])
        line_kind = np.concatenate([anchor, extra_kind])
        line_product = cat.pick_products(rng, line_kind)
        quantity = np.where(
            cat.bulk[line_kind], rng.choice([1, 2, 3], size=line_kind.size, p=[0.85, 0.12, 0.03]), 1
        )
        # The same product twice in one basket becomes one line with the summed quantity.
        key = line_order * len(cat.names) + line_product
        unique_key, inverse = np.unique(key, return_inverse=True)
        self.line_order = unique_key // len(cat.names)
        self.line_product = unique_key % len(cat.names)
        merged = np.bincount(inverse, weights=quantity).astype(np.int64)
        self.line_quantity = np.minimum(merged, _MAX_QUANTITY)
        self.line_price = cat.price[self.line_product]

        subtotal = np.bincount(
            self.line_order, weights=self.line_quantity * self.line_price, minlength=n_orders
        ).astype(np.int64)
        units = np.bincount(self.line_order, weights=self.line_quantity, minlength=n_orders)
        discount_share = _PERIOD_DISCOUNT_SHARE[period] + 0.15 * first_order
        discounted = rng.random(n_orders) < discount_share
        percent = rng.choice([5, 10, 15, 20, 30], size=n_orders, p=[0.25, 0.35, 0.2, 0.15, 0.05])
        cap = rng.choice(
            [150_000, 300_000, 500_000, 1_000_000, 2_000_000],
            size=n_orders,
            p=[0.2, 0.3, 0.25, 0.17, 0.08],
        )
        discount = np.minimum(subtotal * percent // 100 // 1000 * 1000, cap) * discounted
        physical = (
            np.bincount(
                self.line_order,
                weights=~cat.digital[cat.kind[self.line_product]],
                minlength=n_orders,
            )
            > 0
        )
        free = subtotal - discount >= _FREE_SHIPPING_FROM
        shipping = np.where(physical & ~free, _CITY_SHIPPING[self.city[owner]], 0)
        has_clothing = (
            np.bincount(
                self.line_order,
                weights=cat.kind[self.line_product] == _KIND_SLUGS.index("clothing"),
                minlength=n_orders,
            )
            > 0
        )
        p_cancel = np.where(channel == 0, 0.025, 0.04)
        p_refund = 0.015 + 0.05 * has_clothing
        p_partial = 0.025 * (units >= 2)
        u = rng.random(n_orders)
        status = np.select(
            [u < p_cancel, u < p_cancel + p_refund, u < p_cancel + p_refund + p_partial],
            [3, 1, 2],
            0,
        )
        self.order_owner, self.order_time = owner, placed
        self.order_channel, self.order_status = channel, status
        self.order_anchor = anchor
        self.order_total = subtotal - discount + shipping
        self.order_discount, self.order_shipping = discount, shipping
        self.order_lines = np.bincount(self.line_order, minlength=n_orders)

    # events --------------------------------------------------------------------------------

    def _events(self) -> None:
        parts = [self._order_sessions(), self._research_views(), self._browsing()]
        owner = np.concatenate([p[0] for p in parts])
        time = np.concatenate([p[1] for p in parts])
        prop = np.concatenate([p[2] for p in parts])
        kind = np.concatenate([p[3] for p in parts])
        keep = time < self.cal.t_end
        owner, time, prop, kind = owner[keep], time[keep], prop[keep], kind[keep]
        order = np.lexsort((time, owner))
        self.event_owner, self.event_time = owner[order], time[order]
        self.event_prop, self.event_type = prop[order], kind[order]

    def _order_sessions(self) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
        """Each order's session: a page view, a few comparison views in the basket's first kind,
        then a view and an add-to-cart per line, all before the order is placed."""
        rng, cat = self.rng, self.cat
        n_orders = self.order_owner.size
        compare = rng.poisson(1.3, n_orders)
        size = 1 + compare + 2 * self.order_lines
        ev_order = np.repeat(np.arange(n_orders, dtype=np.int64), size)
        starts = np.cumsum(size) - size
        k = np.arange(ev_order.size, dtype=np.int64) - starts[ev_order]
        length = 120 + rng.exponential(900, n_orders) * (1 + 0.3 * self.order_lines)
        owner = self.order_owner
        begin = np.maximum(self.order_time - length, self.signup[owner])
        times = (
            begin[ev_order]
            + (self.order_time - begin)[ev_order] * (k + rng.random(k.size)) / size[ev_order]
        )
        first_line = np.cumsum(self.order_lines) - self.order_lines
        step = k - 1 - compare[ev_order]
        is_line = step >= 0
        line = first_line[ev_order] + np.where(is_line, step // 2, 0)
        line = np.minimum(line, max(self.line_product.size - 1, 0))
        compared = cat.pick_products(rng, self.order_anchor[ev_order])
        product = np.where(is_line, self.line_product[line], compared)
        cart = is_line & (step % 2 == 1)
        kind = np.where(k == 0, 0, np.where(cart, 2, 1))
        quantity = np.where(cart, self.line_quantity[line], 1)
        channel = self.order_channel[ev_order]
        path = rng.choice(4, size=n_orders, p=[0.35, 0.2, 0.35, 0.1])[ev_order]
        prop = self._props(kind, product, quantity, channel, path, self.order_anchor[ev_order])
        return owner[ev_order], times, prop, kind

    def _research_views(self) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
        """Dear items are looked at days before they are bought."""
        rng = self.rng
        if self.line_product.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, np.zeros(0), empty, empty
        order = np.lexsort((-self.line_price, self.line_order))
        first = np.ones(order.size, bool)
        first[1:] = self.line_order[order][1:] != self.line_order[order][:-1]
        dearest = order[first]  # one line per order, orders ascending
        dear_order = self.line_order[dearest]
        views = rng.poisson(2.0, dear_order.size) * (self.line_price[dearest] >= 3_000_000)
        ev_line = np.repeat(dearest, views)
        ev_order = self.line_order[ev_line]
        times = self.order_time[ev_order] - (HOUR + rng.random(ev_line.size) * 14 * DAY)
        owner = self.order_owner[ev_order]
        keep = times >= self.signup[owner]
        product = self.line_product[ev_line]
        kind = np.ones(ev_line.size, dtype=np.int64)  # product views; page fields unused
        prop = self._props(
            kind, product, kind, self.order_channel[ev_order], kind * 0, self.cat.kind[product]
        )
        return owner[keep], times[keep], prop[keep], kind[keep]

    def _browsing(self) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
        """Sessions without an order: at signup, while alive (buyers), and a few return visits in
        the following month (signups that never buy)."""
        rng, cal, n = self.rng, self.cal, self.n
        everyone = np.arange(n, dtype=np.int64)
        signup_owner = everyone[~self.immediate]
        alive_end = np.minimum(self.dropout, cal.t_end)
        browse_owner, browse_time = cal.poisson_times(
            rng, np.where(self.converts, 2.0 * self.rate + 0.004, 0.0), self.signup, alive_end
        )
        lost = everyone[~self.converts]
        returns = rng.poisson(0.8, lost.size)
        return_owner = np.repeat(lost, returns)
        return_time = self.signup[return_owner] + HOUR + rng.random(return_owner.size) * 30 * DAY
        owner = np.concatenate([signup_owner, browse_owner, return_owner])
        start = np.concatenate([self.signup[signup_owner], browse_time, return_time])
        at_signup = np.concatenate(
            [
                np.ones(signup_owner.size, bool),
                np.zeros(browse_owner.size + return_owner.size, bool),
            ]
        )
        n_sessions = owner.size
        views = rng.geometric(0.4, n_sessions)
        abandoned = rng.random(n_sessions) < 0.12
        size = 1 + views + abandoned
        ev_session = np.repeat(np.arange(n_sessions, dtype=np.int64), size)
        starts = np.cumsum(size) - size
        k = np.arange(ev_session.size, dtype=np.int64) - starts[ev_session]
        gap = np.where(k == 0, 0.0, 10 + rng.exponential(70, ev_session.size))
        times = start[ev_session] + _cumsum_by_group(gap, starts, size)
        period = cal.period[cal.day_of(start)]
        session_kind = _sample_rows(
            rng, np.cumsum(self.taste[owner] * self.cat.period_tilt[period], axis=1)
        )
        product = self.cat.pick_products(rng, session_kind[ev_session])
        is_cart = k == size[ev_session] - 1
        is_cart &= abandoned[ev_session]
        # The abandoned cart holds the last viewed product: the event just before it.
        product = np.where(is_cart, np.roll(product, 1), product)
        kind = np.where(k == 0, 0, np.where(is_cart, 2, 1))
        channel = np.where(
            rng.random(n_sessions) < 0.85,
            self.main_channel[owner],
            rng.choice(3, size=n_sessions, p=[0.5, 0.42, 0.08]),
        )
        path = np.where(at_signup, 4, rng.choice(4, size=n_sessions, p=[0.4, 0.25, 0.3, 0.05]))
        prop = self._props(
            kind,
            product,
            np.ones(kind.size, dtype=np.int64),
            channel[ev_session],
            path[ev_session],
            session_kind[ev_session],
        )
        return owner[ev_session], times, prop, kind

    def _props(
        self,
        kind: IntArray,
        product: IntArray,
        quantity: IntArray,
        channel: IntArray,
        path: IntArray,
        path_kind: IntArray,
    ) -> IntArray:
        """Index of each event's properties in the catalogue's properties table."""
        return _property_index(
            len(self.cat.names), kind, product, quantity, channel, path, path_kind
        )

    # tickets -------------------------------------------------------------------------------

    def _tickets(self) -> None:
        rng, cal = self.rng, self.cal
        status = self.order_status
        p_ticket = np.array([0.008, 0.4, 0.35, 0.12])[status]
        from_order = np.flatnonzero(rng.random(status.size) < p_ticket)
        lost = np.flatnonzero(~self.converts)
        asking = lost[rng.random(lost.size) < 0.01]
        n_order_tickets = from_order.size
        order_status = status[from_order]
        after = np.select(
            [order_status == 3, order_status == 0],
            [
                300 + rng.random(n_order_tickets) * 12 * HOUR,
                HOUR + rng.exponential(3 * DAY, n_order_tickets),
            ],
            DAY + rng.random(n_order_tickets) * 11 * DAY,
        )
        opened = np.concatenate(
            [
                self.order_time[from_order] + after,
                self.signup[asking] + rng.random(asking.size) * 3 * DAY,
            ]
        )
        owner = np.concatenate([self.order_owner[from_order], asking])
        reason = np.concatenate([order_status, np.full(asking.size, 4, dtype=np.int64)])
        n_tickets = owner.size
        channel = rng.choice(4, size=n_tickets, p=[0.4, 0.25, 0.15, 0.2])
        median_response = np.array([12 * 60, 3 * 60, 6 * HOUR, 40 * 60], dtype=float)[channel]
        first_response = opened + median_response * np.exp(0.9 * rng.standard_normal(n_tickets))
        median_resolve = np.array([8 * HOUR, 2 * DAY, 3 * DAY, 3 * DAY, 30 * 60])[reason]
        resolved = first_response + median_resolve * np.exp(1.0 * rng.standard_normal(n_tickets))
        unresolved = rng.random(n_tickets) < 0.05
        hours = (resolved - opened) / HOUR
        score = (
            4.4
            - 0.45 * np.log10(1 + hours)
            - 0.5 * np.isin(reason, [1, 2])
            + 0.8 * rng.standard_normal(n_tickets)
        )
        answered = (rng.random(n_tickets) < 0.45) & ~unresolved & (resolved < cal.t_end)
        keep = opened < cal.t_end
        order = np.lexsort((opened[keep], owner[keep]))
        pick = np.flatnonzero(keep)[order]
        subject_choice = rng.random(n_tickets)
        self.ticket_owner, self.ticket_opened = owner[pick], opened[pick]
        self.ticket_first_response = first_response[pick]
        self.ticket_resolved = np.where(unresolved, np.inf, resolved)[pick]
        self.ticket_channel, self.ticket_reason = channel[pick], reason[pick]
        self.ticket_subject_choice = subject_choice[pick]
        self.ticket_satisfaction = np.where(answered, np.clip(np.rint(score), 1, 5), 0)[pick]

    # output --------------------------------------------------------------------------------

    def write(
        self, writers: dict[str, Any], handles: dict[str, TextIO], numbering: _Numbering
    ) -> dict[str, int]:
        """Append this chunk's rows to each file; returns rows written per file."""
        cal = self.cal
        customer_ids = np.array([f"C{i + 1:06d}" for i in self.index.tolist()], dtype=object)
        counts: dict[str, int] = {}

        first_names = np.where(
            self.female,
            np.array([name for name, _ in FEMALE_FIRST_NAMES], dtype=object)[
                np.minimum(self.first_name_idx, len(FEMALE_FIRST_NAMES) - 1)
            ],
            np.array([name for name, _ in MALE_FIRST_NAMES], dtype=object)[
                np.minimum(self.first_name_idx, len(MALE_FIRST_NAMES) - 1)
            ],
        )
        last_names = np.array([name for name, _ in LAST_NAMES], dtype=object)[self.last_name_idx]
        emails = self._emails()
        subscribers = self.identity.subscriber(self.index)
        phones = [
            f"+98{_MOBILE_PREFIXES[p]}{s:07d}"
            for p, s in zip(self.phone_prefix.tolist(), subscribers.tolist(), strict=True)
        ]
        birth = np.datetime_as_string(self.birth_day.astype("datetime64[D]")).tolist()
        cities = [CITIES[c].name for c in self.city.tolist()]
        truth = ("false", "true")
        writers["customers"].writerows(
            zip(
                customer_ids.tolist(),
                emails,
                phones,
                first_names.tolist(),
                last_names.tolist(),
                np.where(self.female, "female", "male").tolist(),
                birth,
                cities,
                ["IR"] * self.n,
                self.language.tolist(),
                [TIMEZONE] * self.n,
                _iso(self.signup),
                [ACQUISITION_SOURCES[s] for s in self.source.tolist()],
                [truth[b] for b in self.accepts_email.tolist()],
                [truth[b] for b in self.accepts_sms.tolist()],
                strict=True,
            )
        )
        counts["customers"] = self.n

        n_orders = self.order_owner.size
        order_ids = np.array(
            [f"O{numbering.orders + i + 1:07d}" for i in range(n_orders)], dtype=object
        )
        numbering.orders += n_orders
        writers["orders"].writerows(
            zip(
                order_ids.tolist(),
                customer_ids[self.order_owner].tolist(),
                _iso(self.order_time),
                [ORDER_STATUSES[s] for s in self.order_status.tolist()],
                self.order_total.astype(str).tolist(),
                [CURRENCY] * n_orders,
                self.order_discount.astype(str).tolist(),
                self.order_shipping.astype(str).tolist(),
                [ORDER_CHANNELS[c] for c in self.order_channel.tolist()],
                strict=True,
            )
        )
        counts["orders"] = n_orders
        writers["order_lines"].writerows(
            zip(
                order_ids[self.line_order].tolist(),
                self.cat.product_ids[self.line_product].tolist(),
                self.line_quantity.astype(str).tolist(),
                self.line_price.astype(str).tolist(),
                strict=True,
            )
        )
        counts["order_lines"] = int(self.line_order.size)

        # Written by hand for speed (the bulk of the output): ids, types and timestamps never
        # need CSV quoting, and the properties come quoted from the catalogue's table.
        events = zip(
            customer_ids[self.event_owner].tolist(),
            _EVENT_TYPE_TEXT[self.event_type].tolist(),
            _iso(self.event_time),
            self.cat.properties_csv[self.event_prop].tolist(),
            strict=True,
        )
        handles["events"].write("".join([f"{c},{t},{w},{p}\n" for c, t, w, p in events]))
        counts["events"] = int(self.event_owner.size)

        n_tickets = self.ticket_owner.size
        ticket_ids = [f"T{numbering.tickets + i + 1:06d}" for i in range(n_tickets)]
        numbering.tickets += n_tickets
        subject_keys = ("paid", "refunded", "partially_refunded", "cancelled", "browsing")
        subjects = []
        for reason, choice in zip(
            self.ticket_reason.tolist(), self.ticket_subject_choice.tolist(), strict=True
        ):
            options = _TICKET_SUBJECTS[subject_keys[reason]]
            subjects.append(options[int(choice * len(options))])
        writers["tickets"].writerows(
            zip(
                ticket_ids,
                customer_ids[self.ticket_owner].tolist(),
                _iso(self.ticket_opened),
                _optional_iso(self.ticket_first_response, cal.t_end),
                _optional_iso(self.ticket_resolved, cal.t_end),
                [TICKET_CHANNELS[c] for c in self.ticket_channel.tolist()],
                subjects,
                [str(int(s)) if s else "" for s in self.ticket_satisfaction.tolist()],
                strict=True,
            )
        )
        counts["tickets"] = n_tickets

        rate = np.where(self.converts, self.rate, 0.0)
        dropout = _optional_iso(self.dropout, cal.t_end)
        writers["ground_truth"].writerows(
            zip(
                customer_ids.tolist(),
                [format(x, ".6g") for x in rate.tolist()],
                dropout,
                ["true" if not d else "false" for d in dropout],
                strict=True,
            )
        )
        counts["ground_truth"] = self.n
        return counts

    def _emails(self) -> list[str]:
        number = self.identity.email_number(self.index).tolist()
        emails: list[str] = []
        for has, pattern, domain, female, first, last, num in zip(
            self.has_email.tolist(),
            self.email_pattern.tolist(),
            self.email_domain.tolist(),
            self.female.tolist(),
            self.first_name_idx.tolist(),
            self.last_name_idx.tolist(),
            number,
            strict=True,
        ):
            if not has:
                emails.append("")
                continue
            given = (FEMALE_FIRST_NAMES if female else MALE_FIRST_NAMES)[first][1]
            family = LAST_NAMES[last][1]
            # Every pattern ends with the customer's unique number, which makes addresses unique.
            handle = (
                f"{given}.{family}",
                f"{given[0]}.{family}",
                f"{given}_{family}",
                f"{given}{family}",
            )[pattern]
            emails.append(f"{handle}{num}@{_EMAIL_DOMAINS[domain]}")
        return emails


def _optional_iso(seconds: FloatArray, t_end: float) -> list[str]:
    """ISO strings for times inside the window; empty strings for later (or infinite) ones."""
    inside = seconds < t_end
    text = _iso(np.where(inside, seconds, 0.0))
    return [t if ok else "" for t, ok in zip(text, inside.tolist(), strict=True)]


def _cumsum_by_group(values: FloatArray, starts: IntArray, sizes: IntArray) -> FloatArray:
    """Running sum of `values` restarting at each group (groups are contiguous)."""
    total = np.cumsum(values)
    before = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0.0)
    result: FloatArray = total - np.repeat(before, sizes)
    return result


_EVENT_TYPE_TEXT = np.array(EVENT_TYPES, dtype=object)
_PATHS = ("/", "/search", "/category/{slug}", "/offers", "/register")


def _properties_table(n_products: int) -> NDArray[np.object_]:
    """Every distinct event properties JSON, already quoted for CSV, in `_property_index` order.

    An event's properties depend only on a handful of small integers (type, product, quantity,
    channel, page), so formatting millions of JSON strings reduces to an array lookup.
    """
    channels = ORDER_CHANNELS
    views = [
        _json_object(product_id=f"P{p + 1:04d}", channel=c)
        for p in range(n_products)
        for c in channels
    ]
    carts = [
        _json_object(product_id=f"P{p + 1:04d}", quantity=q, channel=c)
        for p in range(n_products)
        for q in range(1, _MAX_QUANTITY + 1)
        for c in channels
    ]
    pages = [
        _json_object(path=path.format(slug=slug), channel=c)
        for path in _PATHS
        for slug in _KIND_SLUGS
        for c in channels
    ]
    quoted = ['"' + text.replace('"', '""') + '"' for text in views + carts + pages]
    return np.array(quoted, dtype=object)


def _property_index(
    n_products: int,
    kind: IntArray,
    product: IntArray,
    quantity: IntArray,
    channel: IntArray,
    path: IntArray,
    path_kind: IntArray,
) -> IntArray:
    """Position of each event's properties in `_properties_table`."""
    n_channels, n_kinds = len(ORDER_CHANNELS), len(_KIND_SLUGS)
    view = product * n_channels + channel
    cart = (
        n_products * n_channels
        + (product * _MAX_QUANTITY + np.clip(quantity, 1, _MAX_QUANTITY) - 1) * n_channels
        + channel
    )
    page = (
        n_products * n_channels * (1 + _MAX_QUANTITY)
        + (path * n_kinds + path_kind) * n_channels
        + channel
    )
    result: IntArray = np.select([kind == 0, kind == 1], [page, view], cart).astype(np.int64)
    return result
