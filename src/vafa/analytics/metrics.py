"""Retention KPIs over time: retention and churn, order value, repeat buying, surveys and goals.

Every time-series function returns a *tidy* frame, one row per period, with ``period_start`` and
``period_end`` (the period's first and last local calendar day, both inclusive, as midnight
timestamps without zone), ``complete`` (False for a period cut short by ``as_of``), ``value``, and
the parts the value is computed from, so a report can show its working. ``period`` is ``"M"``,
``"Q"`` or ``"Y"`` (Gregorian calendar periods in the shop's zone ``tz``), ``"JM"``, ``"JQ"`` or
``"JY"`` (Jalali months, seasons and years: the periods Iranian merchants report in), a list of boundary dates
(``[b0, b1, …, bn]`` gives the periods ``[b0, b1), …, [bn-1, bn)``), or ``None`` for one period
from the first purchase to ``as_of``. ``as_of`` (default: the last purchase day) is the last day
looked at; later rows are ignored. Wherever a transactions table is accepted, a
`vafa.analytics.summary.PurchaseHistory` is too (build it once, pass it to every KPI).

Retention and churn (MISSION.md, seed 001 §7)
---------------------------------------------
::

    retention rate = ((E − N) / S) × 100        churn rate = (lost / S) × 100

need a rule for who is a customer at a given moment. The rule here: **a customer is active at the
start of day d when they made a purchase in the ``active_window`` days before it** (a purchase
on a day p with d − active_window ≤ p < d). For a period starting on day b and ending before day
e:

* ``S`` = customers active at b (the start);
* ``E`` = customers active at e (the end);
* ``lost`` = customers in S but not in E;
* ``N`` = customers in E but not in S: those whose first purchase falls in the period (``new``)
  plus those who had lapsed before b and came back (``reactivated``). Both are reported.

Counting returning lapsed customers in N (rather than only first-time buyers) keeps the formula
honest: E − N is then exactly the customers of S still active at the end, so
**retention rate = 100 − churn rate**, always. With N restricted to first-time buyers, a win-back
campaign would inflate "retention" above the share of S actually kept.

Worked example: ``active_window=365``, the quarter 2024-04-01 … 2024-06-30 (b = 1 April, e = 1 July).

====== ============================ ============= ============= =====================
name   purchases                    active 1 Apr  active 1 Jul  counts as
====== ============================ ============= ============= =====================
Ana    2023-12-10, 2024-05-03       yes           yes           in S and E (retained)
Bahram 2023-05-20                   yes (317 d)   no (407 d)    lost
Sara   2024-06-15 (first ever)      no            yes           N (new)
Reza   2022-01-01, 2024-06-01       no            yes           N (reactivated)
====== ============================ ============= ============= =====================

S = 2, E = 3, N = 2, lost = 1: retention = (3 − 2) / 2 × 100 = 50 %, churn = 1 / 2 × 100 = 50 %.
A period with S = 0 has no retention rate (NaN). ``active_window="auto"`` derives the window from
the shop's own rhythm with `suggest_active_window` (the 80th percentile of the gaps between a
customer's consecutive purchases).

Other definitions
-----------------
* An *order* is one row of the transactions table; a *purchase occasion* is one customer-day (as in
  `vafa.analytics.summary`). Order value measures count orders; repeat-buying measures count
  occasions, so two orders placed minutes apart do not make a repeat customer.
* AOV = revenue / orders; purchase frequency = orders / buying customers; revenue per customer =
  revenue / buying customers (all within the period).
* Repeat-purchase rate = % of the period's buying customers with two or more purchase occasions
  up to the end of the period.
* Time between purchases: gaps in days between consecutive occasions of a customer, counted in the
  period of the later one; ``value`` is the median, ``mean_days`` the mean.
* Pareto share = % of the period's revenue from its top ``top_share`` (20 %) of buying customers.
* Rebuy rate (K8, seed 002): of customers who reached exactly k purchase occasions, the % who made
  another within ``window_days``; only occasions at least ``window_days`` before ``as_of`` count, so
  nobody is judged on a window not yet over.
* Surveys: NPS = % promoters (9–10) − % detractors (0–6) on the 0–10 scale; CSAT = % of answers 4
  or 5 on the 1–5 scale ("satisfied" or "very satisfied"); CES = mean answer on the 1–7 scale where
  7 means the customer found it very easy (the CES 2.0 agreement wording; higher is better); survey
  response rate = % of invitations answered (same customer and kind) within ``response_window_days``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import jdatetime
import numpy as np
import pandas as pd
import pyarrow as pa

from vafa.analytics.errors import InputError, InputFieldError, StatisticalWarning
from vafa.analytics.io import DateLike, day_number, day_numbers
from vafa.analytics.summary import PurchaseHistory, purchase_history

__all__ = [
    "GoalProgress",
    "PeriodSpec",
    "average_order_value",
    "ces",
    "churn_rate",
    "csat",
    "goal_progress",
    "kpi_table",
    "nps",
    "pareto_share",
    "purchase_frequency",
    "read_survey_answers",
    "rebuy_rates",
    "repeat_purchase_rate",
    "retention_rate",
    "revenue_per_customer",
    "suggest_active_window",
    "survey_metrics",
    "survey_response_rate",
    "time_between_purchases",
]

CalendarPeriod: TypeAlias = Literal["M", "Q", "Y", "JM", "JQ", "JY"]
PeriodSpec: TypeAlias = CalendarPeriod | Sequence[DateLike] | None
CALENDAR_PERIODS: tuple[str, ...] = ("M", "Q", "Y", "JM", "JQ", "JY")
_JALALI_MONTHS = {"JM": 1, "JQ": 3, "JY": 12}
ActiveWindow: TypeAlias = int | Literal["auto"]
Transactions: TypeAlias = pd.DataFrame | pa.Table | PurchaseHistory

_EPOCH = np.datetime64("1970-01-01", "D")
_PERIOD_COLUMNS = ["period_start", "period_end", "complete"]
SURVEY_SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


# --------------------------------------------------------------------------------------------
# periods and purchase occasions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Periods:
    """Half-open local-day ranges ``[starts[i], ends[i])``; ends are clipped to ``as_of + 1``."""

    starts: np.ndarray
    ends: np.ndarray
    complete: np.ndarray

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "period_start": _dates(self.starts),
                "period_end": _dates(self.ends - 1),
                "complete": self.complete,
            }
        )

    def locate(self, days: np.ndarray) -> np.ndarray:
        """Index of the period holding each day, or -1 when none does."""
        index = np.searchsorted(self.starts, days, side="right") - 1
        inside = (index >= 0) & (days < self.ends[np.clip(index, 0, None)])
        return np.where(inside, index, -1)


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series((_EPOCH + days.astype("timedelta64[D]")).astype("datetime64[s]"))


def _periods(period: PeriodSpec, first_day: int, as_of_day: int, tz: str) -> _Periods:
    stop = as_of_day + 1
    if period is None:
        bounds = np.array([first_day, stop], dtype=np.int64)
    elif isinstance(period, str) and period in _JALALI_MONTHS:
        bounds = np.array(_jalali_bounds(period, first_day, as_of_day), dtype=np.int64)
    elif isinstance(period, str):
        if period not in CALENDAR_PERIODS:
            raise InputError(
                f"period must be 'M', 'Q', 'Y', 'JM', 'JQ', 'JY', a list of dates or None: "
                f"{period!r}"
            )
        first = pd.Timestamp(_EPOCH + np.timedelta64(first_day, "D"))
        last = pd.Timestamp(_EPOCH + np.timedelta64(as_of_day, "D"))
        spans = pd.period_range(start=first, end=last, freq=period)
        firsts = [day_number(start) for start in spans.start_time]
        following = (spans[-1] + 1).start_time
        bounds = np.array([*firsts, day_number(following)], dtype=np.int64)
    else:
        bounds = np.array([day_number(value, tz) for value in period], dtype=np.int64)
        if len(bounds) < 2:
            raise InputError("a list of period boundaries needs at least two dates")
        if (np.diff(bounds) <= 0).any():
            raise InputError("period boundaries must be strictly increasing dates")
    starts = bounds[:-1]
    ends = bounds[1:]
    keep = starts < stop
    if not keep.any():
        raise InputError("every period starts after as_of")
    starts, ends = starts[keep], ends[keep]
    clipped = np.minimum(ends, stop)
    return _Periods(starts=starts, ends=clipped, complete=ends <= stop)


def _jalali_start(day: int, months: int) -> tuple[int, int]:
    """The Jalali (year, month) opening the `months`-long period that holds local day `day`."""
    jalali = jdatetime.date.fromgregorian(date=_day_to_date(day))
    return jalali.year, (jalali.month - 1) // months * months + 1


def _jalali_shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _jalali_day(year: int, month: int) -> int:
    """Local day number of the first day of a Jalali month."""
    return day_number(jdatetime.date(year, month, 1).togregorian())


def _jalali_bounds(period: str, first_day: int, last_day: int) -> list[int]:
    """Boundaries of the Jalali months, seasons or years from the one holding `first_day` to the
    one after the one holding `last_day` (Farvardin 1 opens the year and the spring season)."""
    months = _JALALI_MONTHS[period]
    year, month = _jalali_start(first_day, months)
    bounds = [_jalali_day(year, month)]
    while bounds[-1] <= last_day:
        year, month = _jalali_shift(year, month, months)
        bounds.append(_jalali_day(year, month))
    return bounds


def _occasions(transactions: Transactions, as_of: DateLike | None, tz: str) -> PurchaseHistory:
    return purchase_history(transactions, as_of=as_of, tz=tz)


def _first_day(occasions: PurchaseHistory) -> int:
    return int(occasions.day.min())


def _tidy(periods: _Periods, value: np.ndarray, **parts: np.ndarray) -> pd.DataFrame:
    frame = periods.frame()
    frame["value"] = value.astype(np.float64)
    for name, column in parts.items():
        frame[name] = column
    return frame


def _percent(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = numerator.astype(np.float64)
    denominator = denominator.astype(np.float64)
    out = np.full(len(numerator), np.nan)
    np.divide(numerator * 100.0, denominator, out=out, where=denominator > 0)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return _percent(numerator, denominator) / 100.0


# --------------------------------------------------------------------------------------------
# retention and churn
# --------------------------------------------------------------------------------------------


def suggest_active_window(
    transactions: Transactions,
    *,
    quantile: float = 0.8,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> int:
    """Suggest ``active_window`` in days: the ``quantile`` of the gaps between repeat purchases.

    With the default 0.8, four in five repeat purchases came sooner than this after the previous
    one, so a customer silent for longer has probably lapsed. Falls back to 365 days (with a
    `StatisticalWarning`) when the data has fewer than 20 gaps.
    """
    if not 0.0 < quantile < 1.0:
        raise InputError("quantile must be between 0 and 1")
    occasions = _occasions(transactions, as_of, tz)
    gaps = _gaps(occasions)[1]
    if len(gaps) < 20:
        import warnings

        warnings.warn(
            f"only {len(gaps)} repeat purchases: using a 365-day activity window",
            StatisticalWarning,
            stacklevel=2,
        )
        return 365
    return max(1, math.ceil(float(np.quantile(gaps, quantile))))


def _window(
    transactions: Transactions, active_window: ActiveWindow, as_of: DateLike | None, tz: str
) -> int:
    if active_window == "auto":
        return suggest_active_window(transactions, as_of=as_of, tz=tz)
    if isinstance(active_window, bool) or not isinstance(active_window, int | np.integer):
        raise InputError("active_window must be a whole number of days or 'auto'")
    if active_window < 1:
        raise InputError("active_window must be at least one day")
    return int(active_window)


def _active_at(occasions: PurchaseHistory, day: int, window: int) -> np.ndarray:
    """Boolean per customer code: purchased on a day p with day − window ≤ p < day."""
    recent = (occasions.day < day) & (occasions.day >= day - window)
    return np.bincount(occasions.code[recent], minlength=len(occasions.customers)) > 0


def _activity_parts(
    transactions: Transactions,
    period: PeriodSpec,
    active_window: ActiveWindow,
    as_of: DateLike | None,
    tz: str,
) -> pd.DataFrame:
    if period is None:
        raise InputError("retention and churn need periods: pass period='M', 'Q', 'Y' or dates")
    occasions = _occasions(transactions, as_of, tz)
    window = _window(occasions, active_window, None, tz)
    periods = _periods(period, _first_day(occasions), occasions.as_of, tz)
    first = occasions.first_day
    rows: dict[str, list[int]] = {k: [] for k in ("S", "E", "N", "lost", "new", "reactivated")}
    for start, end in zip(periods.starts, periods.ends, strict=True):
        at_start = _active_at(occasions, int(start), window)
        at_end = _active_at(occasions, int(end), window)
        joined = at_end & ~at_start
        first_inside = (first >= start) & (first < end)
        rows["S"].append(int(at_start.sum()))
        rows["E"].append(int(at_end.sum()))
        rows["N"].append(int(joined.sum()))
        rows["lost"].append(int((at_start & ~at_end).sum()))
        rows["new"].append(int((joined & first_inside).sum()))
        rows["reactivated"].append(int((joined & ~first_inside).sum()))
    frame = periods.frame()
    for name, values in rows.items():
        frame[name] = np.asarray(values, dtype=np.int64)
    frame.attrs["active_window"] = window
    return frame


def retention_rate(
    transactions: Transactions,
    *,
    period: PeriodSpec = "Q",
    active_window: ActiveWindow = 365,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Retention rate ((E − N) / S) × 100 per period, with S, E, N, lost, new, reactivated.

    See the module docstring for the activity rule and a worked example.
    """
    parts = _activity_parts(transactions, period, active_window, as_of, tz)
    value = _percent(parts["E"].to_numpy() - parts["N"].to_numpy(), parts["S"].to_numpy())
    parts.insert(3, "value", value)
    return parts


def churn_rate(
    transactions: Transactions,
    *,
    period: PeriodSpec = "Q",
    active_window: ActiveWindow = 365,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Churn rate (lost / S) × 100 per period, with the same parts as `retention_rate`."""
    parts = _activity_parts(transactions, period, active_window, as_of, tz)
    parts.insert(3, "value", _percent(parts["lost"].to_numpy(), parts["S"].to_numpy()))
    return parts


# --------------------------------------------------------------------------------------------
# order value and repeat buying
# --------------------------------------------------------------------------------------------


def _order_parts(
    transactions: Transactions, period: PeriodSpec, as_of: DateLike | None, tz: str
) -> tuple[_Periods, np.ndarray, np.ndarray, np.ndarray, PurchaseHistory]:
    occasions = _occasions(transactions, as_of, tz)
    periods = _periods(period, _first_day(occasions), occasions.as_of, tz)
    where = periods.locate(occasions.day)
    inside = where >= 0
    count = len(periods.starts)
    revenue = np.bincount(where[inside], weights=occasions.amount[inside], minlength=count)
    orders = np.bincount(where[inside], weights=occasions.orders[inside], minlength=count)
    # occasions run by customer then day, so a customer's period index never goes back: each
    # (customer, period) pair starts where either changes
    first_in_period = occasions.starts() | np.r_[True, where[1:] != where[:-1]]
    chosen = first_in_period & inside
    customers = np.bincount(where[chosen], minlength=count)
    return periods, revenue, orders.astype(np.int64), customers, occasions


def average_order_value(
    transactions: Transactions,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """AOV = revenue / orders per period (parts ``revenue``, ``orders``)."""
    periods, revenue, orders, _, _ = _order_parts(transactions, period, as_of, tz)
    return _tidy(periods, _ratio(revenue, orders), revenue=revenue, orders=orders)


def purchase_frequency(
    transactions: Transactions,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Orders per buying customer per period (parts ``orders``, ``customers``)."""
    periods, _, orders, customers, _ = _order_parts(transactions, period, as_of, tz)
    return _tidy(periods, _ratio(orders, customers), orders=orders, customers=customers)


def revenue_per_customer(
    transactions: Transactions,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Revenue per buying customer per period (parts ``revenue``, ``customers``)."""
    periods, revenue, _, customers, _ = _order_parts(transactions, period, as_of, tz)
    return _tidy(periods, _ratio(revenue, customers), revenue=revenue, customers=customers)


def repeat_purchase_rate(
    transactions: Transactions,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """% of the period's buying customers with 2+ purchase occasions by the period's end.

    Parts ``customers`` (who bought in the period) and ``repeat_customers``.
    """
    occasions = _occasions(transactions, as_of, tz)
    periods = _periods(period, _first_day(occasions), occasions.as_of, tz)
    where = periods.locate(occasions.day)
    count = len(periods.starts)
    n_customers = len(occasions.customers)
    customers = np.zeros(count, dtype=np.int64)
    repeaters = np.zeros(count, dtype=np.int64)
    for index, end in enumerate(periods.ends):
        bought = np.zeros(n_customers, dtype=bool)
        bought[occasions.code[where == index]] = True
        # occasions made before the period's end
        reached = np.bincount(occasions.code[occasions.day < end], minlength=n_customers)
        customers[index] = int(bought.sum())
        repeaters[index] = int((bought & (reached >= 2)).sum())
    return _tidy(
        periods, _percent(repeaters, customers), customers=customers, repeat_customers=repeaters
    )


def _gaps(occasions: PurchaseHistory) -> tuple[np.ndarray, np.ndarray]:
    """Return (day of the later purchase, gap in days) for consecutive occasions of a customer."""
    same = occasions.code[1:] == occasions.code[:-1]
    later = occasions.day[1:][same]
    gaps = (occasions.day[1:] - occasions.day[:-1])[same]
    return later, gaps


def time_between_purchases(
    transactions: Transactions,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Median days between consecutive purchase occasions (parts ``mean_days``, ``gaps``).

    A gap belongs to the period of its later purchase; periods without gaps get NaN.
    """
    occasions = _occasions(transactions, as_of, tz)
    periods = _periods(period, _first_day(occasions), occasions.as_of, tz)
    later, gaps = _gaps(occasions)
    where = periods.locate(later)
    medians, means, counts = [], [], []
    for index in range(len(periods.starts)):
        chosen = gaps[where == index].astype(np.float64)
        counts.append(len(chosen))
        medians.append(float(np.median(chosen)) if len(chosen) else math.nan)
        means.append(float(chosen.mean()) if len(chosen) else math.nan)
    return _tidy(
        periods,
        np.asarray(medians),
        mean_days=np.asarray(means),
        gaps=np.asarray(counts, dtype=np.int64),
    )


def pareto_share(
    transactions: Transactions,
    *,
    top_share: float = 0.2,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """% of each period's revenue from its top ``top_share`` of buying customers (K8, 80/20).

    The top group is the ⌈top_share × customers⌉ biggest spenders of the period. Parts
    ``revenue``, ``top_revenue``, ``customers``, ``top_customers``.
    """
    if not 0.0 < top_share <= 1.0:
        raise InputError("top_share must be in (0, 1]")
    occasions = _occasions(transactions, as_of, tz)
    periods = _periods(period, _first_day(occasions), occasions.as_of, tz)
    where = periods.locate(occasions.day)
    count = len(periods.starts)
    revenue = np.zeros(count)
    top_revenue = np.zeros(count)
    customers = np.zeros(count, dtype=np.int64)
    top_customers = np.zeros(count, dtype=np.int64)
    for index in range(count):
        chosen = where == index
        spend = np.bincount(
            occasions.code[chosen],
            weights=occasions.amount[chosen],
            minlength=len(occasions.customers),
        )
        buyers = np.bincount(occasions.code[chosen], minlength=len(occasions.customers)) > 0
        spend = np.sort(spend[buyers])[::-1]
        top = math.ceil(top_share * len(spend)) if len(spend) else 0
        revenue[index] = spend.sum()
        top_revenue[index] = spend[:top].sum()
        customers[index] = len(spend)
        top_customers[index] = top
    return _tidy(
        periods,
        _percent(top_revenue, revenue),
        revenue=revenue,
        top_revenue=top_revenue,
        customers=customers,
        top_customers=top_customers,
    )


def rebuy_rates(
    transactions: Transactions,
    *,
    window_days: int = 180,
    max_k: int = 4,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Probability that a customer with exactly k purchases makes a (k+1)th within a window (K8).

    One row per k = 1 … ``max_k`` (the last row pools k ≥ ``max_k``; its ``label`` reads
    ``"4+"``), with ``eligible`` (customers who reached k purchases at least ``window_days``
    before ``as_of``), ``rebought`` (of those, who bought again within ``window_days``) and
    ``value`` = rebought / eligible × 100. Seed 002: customers who bought twice are far likelier
    to buy again; compare row 1 with row 2.
    """
    if window_days < 1:
        raise InputError("window_days must be at least one day")
    if max_k < 1:
        raise InputError("max_k must be at least 1")
    occasions = _occasions(transactions, as_of, tz)
    ordinal = occasions.ordinal()
    same_next = np.r_[occasions.code[1:] == occasions.code[:-1], False]
    next_day = np.r_[occasions.day[1:], 0]
    gap = np.where(same_next, next_day - occasions.day, np.iinfo(np.int64).max)
    eligible = occasions.day + window_days <= occasions.as_of
    rebought = eligible & (gap <= window_days)
    k = np.minimum(ordinal, max_k)
    counts = np.bincount(k[eligible], minlength=max_k + 1)[1:]
    hits = np.bincount(k[rebought], minlength=max_k + 1)[1:]
    labels = [str(i) for i in range(1, max_k)] + [f"{max_k}+"]
    return pd.DataFrame(
        {
            "k": np.arange(1, max_k + 1),
            "label": labels,
            "value": _percent(hits, counts),
            "eligible": counts.astype(np.int64),
            "rebought": hits.astype(np.int64),
        }
    )


# --------------------------------------------------------------------------------------------
# surveys
# --------------------------------------------------------------------------------------------


def read_survey_answers(answers: pd.DataFrame | pa.Table, *, tz: str = "UTC") -> pd.DataFrame:
    """Check and normalise a survey answers table: ``customer_id, kind, score, answered_at``.

    ``kind`` is one of ``nps`` (0–10), ``csat`` (1–5) or ``ces`` (1–7); scores must be whole numbers
    on their scale. Returns the columns with ``kind`` lower-cased, ``score`` int64 and
    ``answered_at`` an aware UTC timestamp (naive values read in ``tz``).
    """
    frame = answers.to_pandas() if isinstance(answers, pa.Table) else answers.copy()
    missing = [c for c in ("customer_id", "kind", "score", "answered_at") if c not in frame]
    if missing:
        raise InputError(f"survey answers lack column(s): {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    kinds = frame["kind"].astype("str").str.strip().str.lower()
    unknown = ~kinds.isin(list(SURVEY_SCALES))
    if unknown.any():
        position = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputFieldError(
            "", f"row {position}", "kind", f"unknown survey kind {frame['kind'].iloc[position]!r}"
        )
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    low = kinds.map(lambda k: SURVEY_SCALES[k][0]).to_numpy(dtype=np.float64)
    high = kinds.map(lambda k: SURVEY_SCALES[k][1]).to_numpy(dtype=np.float64)
    bad = np.isnan(scores) | (scores != np.round(scores)) | (scores < low) | (scores > high)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        kind = kinds.iloc[position]
        lo, hi = SURVEY_SCALES[kind]
        raise InputFieldError(
            "",
            f"row {position}",
            "score",
            f"{frame['score'].iloc[position]!r} is not a whole number from {lo} to {hi} ({kind})",
        )
    stamps = _aware(frame["answered_at"], "answered_at", tz)
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("str"),
            "kind": kinds,
            "score": scores.astype(np.int64),
            "answered_at": stamps,
        }
    )


def _aware(values: pd.Series, field: str, tz: str) -> pd.Series:
    textual = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
    try:
        stamps = pd.to_datetime(values, format="ISO8601" if textual else None)
    except (ValueError, TypeError) as error:
        raise InputError(f"{field}: {error}") from error
    if stamps.isna().any():
        position = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise InputFieldError("", f"row {position}", field, "missing value")
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    return stamps.dt.tz_convert("UTC").dt.as_unit("us")


def _score_periods(
    stamps: pd.Series, period: PeriodSpec, as_of: DateLike | None, tz: str
) -> tuple[_Periods, np.ndarray]:
    days = day_numbers(stamps, tz)
    if len(days) == 0:
        raise InputError("no survey answers")
    as_of_day = int(days.max()) if as_of is None else day_number(as_of, tz)
    periods = _periods(period, int(days.min()), as_of_day, tz)
    return periods, periods.locate(days)


def _scores_of(answers: pd.DataFrame | pa.Table, kind: str, tz: str) -> pd.DataFrame:
    frame = read_survey_answers(answers, tz=tz)
    chosen = frame[frame["kind"] == kind].reset_index(drop=True)
    if chosen.empty:
        raise InputError(f"no {kind.upper()} answers")
    return chosen


def nps(
    answers: pd.DataFrame | pa.Table,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Net Promoter Score per period: % promoters (9–10) − % detractors (0–6), from −100 to 100.

    Parts ``responses``, ``promoters``, ``passives`` (7–8), ``detractors``.
    """
    chosen = _scores_of(answers, "nps", tz)
    periods, where = _score_periods(chosen["answered_at"], period, as_of, tz)
    scores = chosen["score"].to_numpy()
    count = len(periods.starts)
    inside = where >= 0

    def tally(mask: np.ndarray) -> np.ndarray:
        return np.bincount(where[inside & mask], minlength=count).astype(np.int64)

    responses = tally(np.ones(len(scores), dtype=bool))
    promoters = tally(scores >= 9)
    detractors = tally(scores <= 6)
    value = _percent(promoters, responses) - _percent(detractors, responses)
    return _tidy(
        periods,
        value,
        responses=responses,
        promoters=promoters,
        passives=responses - promoters - detractors,
        detractors=detractors,
    )


def csat(
    answers: pd.DataFrame | pa.Table,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """CSAT per period: % of answers 4 or 5 on the 1–5 scale (parts ``responses``, ``satisfied``)."""
    chosen = _scores_of(answers, "csat", tz)
    periods, where = _score_periods(chosen["answered_at"], period, as_of, tz)
    scores = chosen["score"].to_numpy()
    inside = where >= 0
    count = len(periods.starts)
    responses = np.bincount(where[inside], minlength=count).astype(np.int64)
    satisfied = np.bincount(where[inside & (scores >= 4)], minlength=count).astype(np.int64)
    return _tidy(periods, _percent(satisfied, responses), responses=responses, satisfied=satisfied)


def ces(
    answers: pd.DataFrame | pa.Table,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Customer Effort Score per period: mean answer on the 1–7 scale, 7 = very easy.

    Parts ``responses``.
    """
    chosen = _scores_of(answers, "ces", tz)
    periods, where = _score_periods(chosen["answered_at"], period, as_of, tz)
    scores = chosen["score"].to_numpy(dtype=np.float64)
    inside = where >= 0
    count = len(periods.starts)
    responses = np.bincount(where[inside], minlength=count).astype(np.int64)
    total = np.bincount(where[inside], weights=scores[inside], minlength=count)
    return _tidy(periods, _ratio(total, responses), responses=responses)


def survey_response_rate(
    invitations: pd.DataFrame | pa.Table,
    answers: pd.DataFrame | pa.Table,
    *,
    kind: str | None = None,
    response_window_days: int = 14,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """% of survey invitations answered within ``response_window_days`` (per period of sending).

    ``invitations`` has ``customer_id, kind, sent_at``. An invitation counts as answered when the
    same customer answered the same kind of survey at or after ``sent_at`` and within the window;
    ``kind=None`` pools all kinds. Parts ``invitations``, ``answered``.
    """
    sent = invitations.to_pandas() if isinstance(invitations, pa.Table) else invitations.copy()
    missing = [c for c in ("customer_id", "kind", "sent_at") if c not in sent]
    if missing:
        raise InputError(f"survey invitations lack column(s): {', '.join(missing)}")
    sent = sent.reset_index(drop=True)
    sent = pd.DataFrame(
        {
            "customer_id": sent["customer_id"].astype("str"),
            "kind": sent["kind"].astype("str").str.strip().str.lower(),
            "sent_at": _aware(sent["sent_at"], "sent_at", tz),
        }
    )
    given = read_survey_answers(answers, tz=tz)
    if kind is not None:
        sent = sent[sent["kind"] == kind]
        given = given[given["kind"] == kind]
    if sent.empty:
        raise InputError("no survey invitations")
    sent = sent.assign(row=np.arange(len(sent))).sort_values("sent_at")
    matched = pd.merge_asof(
        sent,
        given.sort_values("answered_at")[["customer_id", "kind", "answered_at"]].assign(
            at=lambda f: f["answered_at"]
        ),
        left_on="sent_at",
        right_on="answered_at",
        by=["customer_id", "kind"],
        direction="forward",
        tolerance=pd.Timedelta(days=response_window_days),
    ).sort_values("row")
    answered_mask = matched["at"].notna().to_numpy()
    periods, where = _score_periods(matched["sent_at"].reset_index(drop=True), period, as_of, tz)
    inside = where >= 0
    count = len(periods.starts)
    total = np.bincount(where[inside], minlength=count).astype(np.int64)
    answered = np.bincount(where[inside & answered_mask], minlength=count).astype(np.int64)
    return _tidy(periods, _percent(answered, total), invitations=total, answered=answered)


def survey_metrics(
    answers: pd.DataFrame | pa.Table,
    *,
    invitations: pd.DataFrame | pa.Table | None = None,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """NPS, CSAT, CES (and response rate when ``invitations`` are given) in one tidy frame.

    Adds a ``metric`` column (``nps``, ``csat``, ``ces``, ``response_rate``); a kind without
    answers is left out.
    """
    frame = read_survey_answers(answers, tz=tz)
    if as_of is None and period is None:
        # every kind's single period ends on the same day, the last answer of any kind
        as_of = _day_to_date(int(day_numbers(frame["answered_at"], tz).max()))
    parts: list[pd.DataFrame] = []
    for name, function in (("nps", nps), ("csat", csat), ("ces", ces)):
        if (frame["kind"] == name).any():
            parts.append(function(frame, period=period, as_of=as_of, tz=tz).assign(metric=name))
    if invitations is not None:
        rate = survey_response_rate(invitations, frame, period=period, as_of=as_of, tz=tz)
        parts.append(rate.assign(metric="response_rate"))
    if not parts:
        raise InputError("no survey answers")
    combined = pd.concat(parts, ignore_index=True)
    ordered = ["metric", *_PERIOD_COLUMNS, "value"]
    return combined[ordered + [c for c in combined.columns if c not in ordered]]


# --------------------------------------------------------------------------------------------
# headline table and goals
# --------------------------------------------------------------------------------------------

_KPI_LABELS: dict[str, str] = {
    "revenue": "Revenue",
    "orders": "Orders",
    "buying_customers": "Customers who bought",
    "active_customers": "Active customers at period end",
    "new_customers": "New customers",
    "retention_rate": "Retention rate (%)",
    "churn_rate": "Churn rate (%)",
    "average_order_value": "Average order value",
    "purchase_frequency": "Orders per customer",
    "revenue_per_customer": "Revenue per customer",
    "repeat_purchase_rate": "Repeat-purchase rate (%)",
    "median_days_between_purchases": "Median days between purchases",
    "pareto_share": "Revenue share of top 20% customers (%)",
    "nps": "NPS",
    "csat": "CSAT (%)",
    "ces": "CES (1–7)",
    "response_rate": "Survey response rate (%)",
}


def kpi_table(
    transactions: Transactions,
    *,
    period: CalendarPeriod = "Q",
    as_of: DateLike | None = None,
    include_partial: bool = False,
    active_window: ActiveWindow = 365,
    answers: pd.DataFrame | pa.Table | None = None,
    invitations: pd.DataFrame | pa.Table | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Headline KPIs for the current period and the one before ("this quarter vs last").

    The current period is the last complete calendar period on or before ``as_of`` (default the
    last purchase day); with ``include_partial=True`` it is the period holding ``as_of``, cut at
    ``as_of`` (so its counts are not comparable in size). Rows: ``metric`` (stable id), ``label``
    (English), ``current``, ``previous``, ``change`` (current − previous) and ``change_pct``
    (relative change in %, NaN from 0). ``attrs`` holds both periods' first and last days
    (ISO strings) and ``complete``.
    """
    if period not in CALENDAR_PERIODS:
        raise InputError(
            "kpi_table compares calendar periods: period must be 'M', 'Q', 'Y', 'JM', 'JQ' or 'JY'"
        )
    # one history serves every KPI below: ids are factorised and days grouped only once
    history = purchase_history(transactions, as_of=as_of, tz=tz)
    as_of_day = history.as_of
    boundaries = _comparison_bounds(period, as_of_day, include_partial)
    cut = None if not include_partial else as_of_day
    bounds = [_day_to_date(day) for day in boundaries]
    end = _day_to_date(cut if cut is not None else boundaries[-1] - 1)
    frame = history.until(day_number(end))
    values: dict[str, tuple[float, float]] = {}

    def pair(series: pd.DataFrame, column: str = "value") -> tuple[float, float]:
        previous, current = series[column].to_numpy(dtype=np.float64)
        return float(current), float(previous)

    aov = average_order_value(frame, period=bounds, tz=tz)
    values["revenue"] = pair(aov, "revenue")
    values["orders"] = pair(aov, "orders")
    values["buying_customers"] = pair(
        revenue_per_customer(frame, period=bounds, tz=tz), "customers"
    )
    churn = churn_rate(frame, active_window=active_window, period=bounds, tz=tz)
    values["active_customers"] = pair(churn, "E")
    values["new_customers"] = pair(churn, "new")
    values["retention_rate"] = pair(
        retention_rate(frame, active_window=active_window, period=bounds, tz=tz)
    )
    values["churn_rate"] = pair(churn)
    values["average_order_value"] = pair(aov)
    values["purchase_frequency"] = pair(purchase_frequency(frame, period=bounds, tz=tz))
    values["revenue_per_customer"] = pair(revenue_per_customer(frame, period=bounds, tz=tz))
    values["repeat_purchase_rate"] = pair(repeat_purchase_rate(frame, period=bounds, tz=tz))
    values["median_days_between_purchases"] = pair(
        time_between_purchases(frame, period=bounds, tz=tz)
    )
    values["pareto_share"] = pair(pareto_share(frame, period=bounds, tz=tz))
    if answers is not None:
        surveys = survey_metrics(answers, invitations=invitations, period=bounds, as_of=end, tz=tz)
        for metric, rows in surveys.groupby("metric", sort=False):
            values[str(metric)] = pair(rows)
    table = pd.DataFrame(
        [
            {"metric": name, "label": _KPI_LABELS[name], "current": cur, "previous": prev}
            for name, (cur, prev) in values.items()
        ]
    )
    table["change"] = table["current"] - table["previous"]
    with np.errstate(divide="ignore", invalid="ignore"):
        previous = table["previous"].to_numpy(dtype=np.float64)
        table["change_pct"] = np.where(
            previous != 0,
            table["change"].to_numpy(dtype=np.float64) / np.abs(previous) * 100,
            np.nan,
        )
    table.attrs = {
        "current_start": bounds[1].isoformat(),
        "current_end": _day_to_date(min(boundaries[2], as_of_day + 1) - 1).isoformat(),
        "previous_start": bounds[0].isoformat(),
        "previous_end": _day_to_date(boundaries[1] - 1).isoformat(),
        "complete": not include_partial or boundaries[2] <= as_of_day + 1,
    }
    return table


def _comparison_bounds(period: str, as_of_day: int, include_partial: bool) -> list[int]:
    """Three local days: previous start, current start, current end (exclusive)."""
    if period in _JALALI_MONTHS:
        months = _JALALI_MONTHS[period]
        year, month = _jalali_start(as_of_day + (0 if include_partial else 1), months)
        if not include_partial:
            year, month = _jalali_shift(year, month, -months)
        return [
            _jalali_day(*_jalali_shift(year, month, -months)),
            _jalali_day(year, month),
            _jalali_day(*_jalali_shift(year, month, months)),
        ]
    anchor = pd.Timestamp(_EPOCH + np.timedelta64(as_of_day + (0 if include_partial else 1), "D"))
    holding = pd.Period(anchor, freq=period)
    current = holding if include_partial else holding - 1
    return [
        day_number((current - 1).start_time),
        day_number(current.start_time),
        day_number((current + 1).start_time),
    ]


def _day_to_date(day: int) -> datetime.date:
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=int(day))


@dataclass(frozen=True)
class GoalProgress:
    """Where a SMART goal stands (K7), e.g. "reduce churn from 12 % to 10.8 % by 31 March".

    ``progress`` is the share of the way from ``baseline`` to ``target`` covered by ``current``
    (1.0 = reached; negative = moved away). ``forecast`` is the linear trend of the series
    extrapolated to the deadline (None with fewer than two points) and ``on_track`` says whether
    that forecast meets the target.
    """

    baseline: float
    current: float
    target: float
    deadline: datetime.date
    direction: Literal["increase", "decrease"]
    progress: float
    reached: bool
    forecast: float | None
    on_track: bool | None
    slope_per_day: float | None
    points: int


def goal_progress(
    series: pd.Series | pd.DataFrame,
    target: float,
    deadline: DateLike,
    *,
    baseline: float | None = None,
    direction: Literal["increase", "decrease"] | None = None,
) -> GoalProgress:
    """Measure progress towards ``target`` by ``deadline`` and forecast it with a linear trend.

    Args:
        series: a metric over time: a Series indexed by dates, or a tidy KPI frame from this
            module (``period_end`` and ``value`` are used). NaN values are dropped.
        target: the value to reach (e.g. ``0.9 × baseline`` for "reduce churn by 10 %").
        deadline: the day by which to reach it.
        baseline: the starting value; default the first value of the series.
        direction: ``"decrease"`` or ``"increase"``; inferred from baseline and target when
            omitted, and required when they are equal.
    """
    if isinstance(series, pd.DataFrame):
        if not {"period_end", "value"} <= set(series.columns):
            raise InputError("a KPI frame needs period_end and value columns")
        points = pd.Series(series["value"].to_numpy(np.float64), index=series["period_end"])
    else:
        points = series.astype(np.float64)
    points = points.dropna()
    if points.empty:
        raise InputError("the series has no values")
    days = np.asarray([day_number(stamp) for stamp in points.index], dtype=np.float64)
    order = np.argsort(days, kind="stable")
    days, values = days[order], points.to_numpy()[order]
    start = float(values[0]) if baseline is None else float(baseline)
    if direction is None:
        if target == start:
            raise InputError("target equals the baseline: say direction='increase'/'decrease'")
        direction = "decrease" if target < start else "increase"
    current = float(values[-1])
    distance = target - start
    progress = (
        (current - start) / distance if distance != 0 else (1.0 if current == target else 0.0)
    )
    reached = current <= target if direction == "decrease" else current >= target
    forecast: float | None = None
    slope: float | None = None
    on_track: bool | None = None
    deadline_day = day_number(deadline)
    if len(values) >= 2 and np.ptp(days) > 0:
        slope_value, intercept = np.polyfit(days, values, 1)
        slope = float(slope_value)
        forecast = float(intercept + slope_value * deadline_day)
        on_track = forecast <= target if direction == "decrease" else forecast >= target
    return GoalProgress(
        baseline=start,
        current=current,
        target=float(target),
        deadline=_day_to_date(deadline_day),
        direction=direction,
        progress=float(progress),
        reached=bool(reached),
        forecast=forecast,
        on_track=on_track,
        slope_per_day=slope,
        points=len(values),
    )


# --------------------------------------------------------------------------------------------
# surveys by group, support tickets
# --------------------------------------------------------------------------------------------

__all__ += ["support_times", "survey_metrics_by"]


def survey_metrics_by(
    answers: pd.DataFrame | pa.Table,
    *,
    by: str,
    invitations: pd.DataFrame | pa.Table | None = None,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """`survey_metrics` for each group of customers (an RFM segment, a loyalty tier, a channel).

    ``answers`` (and ``invitations``, when given) carry a column named ``by`` holding each row's
    group; a group missing is written as "". All groups share one calendar (``as_of`` defaults to
    the last answer of any group), so their periods line up row for row. Returns the tidy
    `survey_metrics` frame with a ``group`` column first; a group without answers is left out
    (its response rate alone would be 0 % of a handful of invitations, not a finding).
    """
    frame = answers.to_pandas() if isinstance(answers, pa.Table) else answers
    sent = invitations.to_pandas() if isinstance(invitations, pa.Table) else invitations
    if by not in frame:
        raise InputError(f"survey answers lack the group column {by!r}")
    if sent is not None and by not in sent:
        raise InputError(f"survey invitations lack the group column {by!r}")
    checked = read_survey_answers(frame, tz=tz).assign(
        **{by: frame[by].fillna("").astype("str").to_numpy()}
    )
    if checked.empty:
        raise InputError("no survey answers")
    as_of_day = (
        int(day_numbers(checked["answered_at"], tz).max()) if as_of is None
        else day_number(as_of, tz)
    )
    first_day = int(day_numbers(checked["answered_at"], tz).min())
    if sent is not None and not sent.empty:
        first_day = min(first_day, int(day_numbers(_aware(sent["sent_at"], "sent_at", tz),
                                                   tz).min()))
    bounds = _shared_bounds(period, first_day, as_of_day, tz)
    as_of = _day_to_date(as_of_day)
    parts: list[pd.DataFrame] = []
    sent_groups = None if sent is None else sent[by].fillna("").astype("str")
    for name in sorted(checked[by].unique()):
        given = checked[checked[by] == name]
        invited = None
        if sent is not None and sent_groups is not None:
            chosen = sent[(sent_groups == name).to_numpy()]
            invited = None if chosen.empty else chosen
        part = survey_metrics(given.drop(columns=[by]), invitations=invited, period=bounds,
                              as_of=as_of, tz=tz)
        parts.append(part.assign(group=name))
    combined = pd.concat(parts, ignore_index=True)
    return combined[["group", *[c for c in combined.columns if c != "group"]]]


def _shared_bounds(
    period: PeriodSpec, first_day: int, as_of_day: int, tz: str
) -> list[datetime.date]:
    """Explicit period boundaries from `first_day` to past `as_of_day`, so that groups whose
    answers start or stop at different times are measured over the same periods."""
    if period is None:
        return [_day_to_date(first_day), _day_to_date(as_of_day + 1)]
    if not isinstance(period, str):
        return [_day_to_date(day_number(value, tz)) for value in period]
    # look far enough ahead that the period holding as_of is not cut short (a year at most)
    extended = _periods(period, first_day, as_of_day + 400, tz)
    keep = extended.starts <= as_of_day
    days = [*extended.starts[keep].tolist(), int(extended.ends[keep][-1])]
    return [_day_to_date(day) for day in days]


def _hours(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    return ((later - earlier) / pd.Timedelta(hours=1)).to_numpy(dtype=np.float64)


def support_times(
    tickets: pd.DataFrame | pa.Table,
    *,
    period: PeriodSpec = None,
    as_of: DateLike | None = None,
    tz: str = "UTC",
    quantile: float = 0.9,
) -> pd.DataFrame:
    """How fast support answers and resolves tickets, and how tickets were rated, per period.

    ``tickets`` has ``opened_at`` and, when known, ``first_response_at``, ``resolved_at`` and
    ``satisfaction`` (1–5). Three metrics, each counted in the period of the event that ends it
    (the usual help-desk convention: "tickets resolved in March took …"), so an open ticket
    never drags a finished period:

    * ``first_response_hours``: hours from opening to the first answer; ``value`` the median,
      ``p90`` the ``quantile`` (linear interpolation, numpy's default), ``mean``, ``tickets``;
    * ``resolution_hours``: hours from opening to resolution, same parts;
    * ``ticket_csat``: % of rated tickets rated 4 or 5 (period of resolution, else of opening),
      parts ``rated``, ``satisfied``, ``mean_rating``.

    A time before the opening is a clock or import error: it is left out with a
    `StatisticalWarning`, never counted as a negative duration.
    """
    import warnings

    frame = tickets.to_pandas() if isinstance(tickets, pa.Table) else tickets.copy()
    if "opened_at" not in frame:
        raise InputError("tickets lack column(s): opened_at")
    if not 0 < quantile < 1:
        raise InputError("quantile must be between 0 and 1")
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise InputError("no tickets")
    opened = _aware(frame["opened_at"], "opened_at", tz)

    def optional(name: str) -> pd.Series:
        if name not in frame:
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
        present = frame[name].notna()
        out = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
        if present.any():
            out[present] = _aware(frame.loc[present, name], name, tz)
        return out

    answered, resolved = optional("first_response_at"), optional("resolved_at")
    rating = pd.to_numeric(frame.get("satisfaction", pd.Series(np.nan, index=frame.index)),
                           errors="coerce").to_numpy(dtype=np.float64)
    rated = ~np.isnan(rating)
    if ((rating[rated] < 1) | (rating[rated] > 5) | (rating[rated] != np.round(rating[rated]))
            ).any():
        raise InputError("satisfaction must be a whole number from 1 to 5")
    events = pd.concat([opened, answered.dropna(), resolved.dropna()])
    all_days = day_numbers(events, tz)
    as_of_day = int(all_days.max()) if as_of is None else day_number(as_of, tz)
    periods = _periods(period, int(all_days.min()), as_of_day, tz)
    count = len(periods.starts)
    parts: list[pd.DataFrame] = []
    for name, end in (("first_response_hours", answered), ("resolution_hours", resolved)):
        known = end.notna().to_numpy()
        hours = np.full(len(frame), np.nan)
        hours[known] = _hours(end[known], opened[known])
        backwards = known & (hours < 0)
        if backwards.any():
            warnings.warn(
                f"{int(backwards.sum())} ticket(s) with {name.removesuffix('_hours')} before "
                "opening left out",
                StatisticalWarning,
                stacklevel=2,
            )
        usable = known & ~backwards
        where = np.full(len(frame), -1)
        where[usable] = periods.locate(day_numbers(end[usable], tz))
        median = np.full(count, np.nan)
        upper = np.full(count, np.nan)
        mean = np.full(count, np.nan)
        measured = np.zeros(count, dtype=np.int64)
        for index in range(count):
            values = hours[where == index]
            if len(values):
                median[index] = float(np.median(values))
                upper[index] = float(np.quantile(values, quantile))
                mean[index] = float(values.mean())
                measured[index] = len(values)
        parts.append(
            _tidy(periods, median, p90=upper, mean=mean, tickets=measured).assign(metric=name)
        )
    rated_at = resolved.where(resolved.notna(), opened)
    where = np.full(len(frame), -1)
    where[rated] = periods.locate(day_numbers(rated_at[rated], tz))
    inside = where >= 0
    total = np.bincount(where[inside], minlength=count).astype(np.int64)
    satisfied = np.bincount(where[inside & (rating >= 4)], minlength=count).astype(np.int64)
    rating_sum = np.bincount(where[inside], weights=rating[inside], minlength=count)
    parts.append(
        _tidy(periods, _percent(satisfied, total), rated=total, satisfied=satisfied,
              mean_rating=_ratio(rating_sum, total)).assign(metric="ticket_csat")
    )
    combined = pd.concat(parts, ignore_index=True)
    ordered = ["metric", *_PERIOD_COLUMNS, "value"]
    return combined[ordered + [c for c in combined.columns if c not in ordered]]
