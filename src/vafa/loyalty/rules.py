"""How many points an order (or a bonus event) earns under the program's earning rules.

Pure functions over plain values: the services call them to book an order, `rule_simulate`
calls them on past orders without writing anything, and tests call them directly.

How an order's points are computed (the order of the steps matters and is part of the contract):

1. **Base amount** = total − shipping (points reward goods, not postage), never below zero. When
   the order has lines, it is shared out over them in proportion to quantity × unit price, so a
   discount lowers every line alike.
2. **Base rate**: the in-force `base_rate` rule for the order's currency (lowest id if several)
   gives `points / per_amount` per unit of money. Without one the order earns no spend points.
3. **Multipliers**: each line is multiplied by the largest in-force product or category
   multiplier matching it (a category rule matches its sub-categories too). Multipliers do not
   stack: the largest wins.
4. **Tier**: the member's tier multiplier scales the spend points (not the bonuses).
5. **Integers**: the arithmetic is exact (fractions, so three thirds of an order make a whole),
   and turned into whole points once, by cumulative floors, so the parts (base, each
   multiplier, the tier) add up to the floor of the exact total; rounding is always down, a
   member never gets a point the rules did not fully earn.
6. **Bonuses**: a `first_order` rule adds its points on the customer's first order (the earliest
   paid, partially refunded or refunded order).
7. **Caps**: each rule's `cap_per_order` and `cap_per_period` limit its own part; then the
   program's cap per order and cap per period (over the program's cap window) limit the total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any

from vafa.loyalty.models import EarningRule, RuleKind

ZERO = Decimal(0)
ONE = Decimal(1)
MULTIPLIER_KINDS = frozenset({RuleKind.CATEGORY_MULTIPLIER, RuleKind.PRODUCT_MULTIPLIER})


@dataclass(frozen=True)
class RuleSpec:
    """An earning rule as plain values (built from an `EarningRule` row, or by hand in tests)."""

    id: int
    kind: str
    name: str = ""
    points: int = 0
    per_amount: Decimal | None = None
    currency: str = ""
    multiplier: Decimal | None = None
    category_id: int | None = None
    product_id: int | None = None
    cap_per_order: int | None = None
    cap_per_period: int | None = None
    cap_period_days: int = 30
    active: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @classmethod
    def from_model(cls, rule: EarningRule, *, force_active: bool = False) -> RuleSpec:
        """The rule's values; `force_active` treats a switched-off rule as on (for simulation)."""
        return cls(
            id=rule.pk,
            kind=rule.kind,
            name=rule.name,
            points=rule.points,
            per_amount=rule.per_amount,
            currency=rule.currency,
            multiplier=rule.multiplier,
            category_id=rule.category_id,
            product_id=rule.product_id,
            cap_per_order=rule.cap_per_order,
            cap_per_period=rule.cap_per_period,
            cap_period_days=rule.cap_period_days,
            active=rule.active or force_active,
            starts_at=rule.starts_at,
            ends_at=rule.ends_at,
        )

    def in_force(self, when: datetime) -> bool:
        """Switched on and inside its validity dates (start inclusive, end exclusive)."""
        if not self.active:
            return False
        if self.starts_at is not None and when < self.starts_at:
            return False
        return self.ends_at is None or when < self.ends_at

    def allowance(self, used_in_period: int) -> int | None:
        """The most this rule may still give on one order (None: no cap)."""
        limits = []
        if self.cap_per_order is not None:
            limits.append(self.cap_per_order)
        if self.cap_per_period is not None:
            limits.append(max(0, self.cap_per_period - used_in_period))
        return min(limits) if limits else None


@dataclass(frozen=True)
class LineFacts:
    """One order line: its product, the ids of its category and all its parents, its amount."""

    product_id: int | None
    category_ids: frozenset[int]
    amount: Decimal


@dataclass(frozen=True)
class OrderFacts:
    """What the rules need to know about an order."""

    placed_at: datetime
    currency: str
    total: Decimal
    shipping: Decimal = ZERO
    lines: tuple[LineFacts, ...] = ()
    is_first_order: bool = False


@dataclass(frozen=True)
class Caps:
    """The program-wide caps and what the member already earned in the cap window."""

    per_order: int | None = None
    per_period: int | None = None
    used_in_period: int = 0


@dataclass(frozen=True)
class Component:
    """One part of an earning: a rule's points, the tier's extra, or a cap's cut (negative)."""

    rule_id: int | None
    label: str
    points: int


@dataclass(frozen=True)
class EarnQuote:
    """The points an order or event earns and why."""

    points: int
    components: tuple[Component, ...] = field(default_factory=tuple)

    def as_details(self) -> dict[str, Any]:
        """JSON kept on the ledger entry: the member's "why did I get this" and per-rule caps."""
        return {
            "components": [
                {"rule": c.rule_id, "label": c.label, "points": c.points} for c in self.components
            ]
        }

    def rule_points(self, rule_id: int) -> int:
        return sum(c.points for c in self.components if c.rule_id == rule_id)


def floor_points(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _line_amounts(
    order: OrderFacts, base_amount: Decimal
) -> list[tuple[LineFacts | None, Fraction]]:
    gross = sum((line.amount for line in order.lines), ZERO)
    if not order.lines or gross <= 0:
        return [(None, Fraction(base_amount))]
    return [
        (line, Fraction(base_amount) * Fraction(line.amount) / Fraction(gross))
        for line in order.lines
    ]


def _best_multiplier(line: LineFacts | None, rules: Sequence[RuleSpec]) -> RuleSpec | None:
    if line is None:
        return None
    best: RuleSpec | None = None
    for rule in rules:
        matches = (
            rule.kind == RuleKind.PRODUCT_MULTIPLIER and rule.product_id == line.product_id
        ) or (rule.kind == RuleKind.CATEGORY_MULTIPLIER and rule.category_id in line.category_ids)
        if (
            matches
            and rule.multiplier is not None
            and (best is None or rule.multiplier > (best.multiplier or ZERO))
        ):
            best = rule
    return best


def _cumulative_floor(parts: Sequence[tuple[int | None, str, Fraction]]) -> list[Component]:
    """Whole points per part whose sum is the floor of the exact total (see the module doc)."""
    components: list[Component] = []
    running, previous = Fraction(0), 0
    for rule_id, label, exact in parts:
        running += exact
        whole = math.floor(running)
        components.append(Component(rule_id, label, whole - previous))
        previous = whole
    return components


def _capped(component: Component, rule: RuleSpec, usage: Mapping[int, int]) -> Component:
    allowance = rule.allowance(usage.get(rule.id, 0))
    if allowance is None or component.points <= allowance:
        return component
    return Component(component.rule_id, component.label, allowance)


def quote_order(
    order: OrderFacts,
    rules: Iterable[RuleSpec],
    *,
    tier_multiplier: Decimal = ONE,
    caps: Caps = Caps(),
    rule_usage: Mapping[int, int] | None = None,
) -> EarnQuote:
    """The points `order` earns under `rules` (see the module docstring for the steps).

    `rule_usage` maps a rule id to what that rule already gave the member within its own cap
    period; `caps` carries the program-wide caps and the member's usage of them.
    """
    usage = rule_usage or {}
    in_force = [rule for rule in rules if rule.in_force(order.placed_at)]
    by_id = {rule.id: rule for rule in in_force}
    components: list[Component] = []

    base_rule = next(
        (
            r
            for r in sorted(in_force, key=lambda r: r.id)
            if r.kind == RuleKind.BASE_RATE and r.currency == order.currency and r.per_amount
        ),
        None,
    )
    if base_rule is not None and base_rule.per_amount:
        rate = Fraction(base_rule.points) / Fraction(base_rule.per_amount)
        base_amount = max(order.total - order.shipping, ZERO)
        multipliers = [r for r in in_force if r.kind in MULTIPLIER_KINDS]
        plain = Fraction(0)
        extras: dict[int, Fraction] = {}
        for line, amount in _line_amounts(order, base_amount):
            line_points = amount * rate
            plain += line_points
            best = _best_multiplier(line, multipliers)
            if best is not None and best.multiplier is not None:
                extra = line_points * (Fraction(best.multiplier) - 1)
                extras[best.id] = extras.get(best.id, Fraction(0)) + extra
        subtotal = plain + sum(extras.values(), Fraction(0))
        parts: list[tuple[int | None, str, Fraction]] = [(base_rule.id, RuleKind.BASE_RATE, plain)]
        parts += [(rid, by_id[rid].kind, extras[rid]) for rid in sorted(extras)]
        parts.append((None, "tier", subtotal * (Fraction(tier_multiplier) - 1)))
        for component in _cumulative_floor(parts):
            rule = by_id.get(component.rule_id) if component.rule_id is not None else None
            capped = _capped(component, rule, usage) if rule is not None else component
            if capped.points:
                components.append(capped)

    if order.is_first_order:
        for rule in sorted(in_force, key=lambda r: r.id):
            if rule.kind == RuleKind.FIRST_ORDER:
                bonus = _capped(Component(rule.id, rule.kind, rule.points), rule, usage)
                if bonus.points:
                    components.append(bonus)

    return _apply_program_caps(components, caps)


def quote_bonus(
    kind: str,
    rules: Iterable[RuleSpec],
    *,
    when: datetime,
    caps: Caps = Caps(),
    rule_usage: Mapping[int, int] | None = None,
) -> EarnQuote:
    """The points a bonus event (`signup`, `birthday`, `review`, `survey`, `referral`) earns:
    the fixed points of every in-force rule of that kind, each within its own caps."""
    usage = rule_usage or {}
    components = [
        _capped(Component(rule.id, rule.kind, rule.points), rule, usage)
        for rule in sorted(rules, key=lambda r: r.id)
        if rule.kind == kind and rule.in_force(when)
    ]
    return _apply_program_caps([c for c in components if c.points], caps)


def _apply_program_caps(components: list[Component], caps: Caps) -> EarnQuote:
    total = sum(c.points for c in components)
    if caps.per_order is not None and total > caps.per_order:
        components.append(Component(None, "cap_per_order", caps.per_order - total))
        total = caps.per_order
    if caps.per_period is not None:
        allowance = max(0, caps.per_period - caps.used_in_period)
        if total > allowance:
            components.append(Component(None, "cap_per_period", allowance - total))
            total = allowance
    return EarnQuote(points=max(total, 0), components=tuple(components))


def reversal_target(earned: int, *, total: Decimal, refunded: Decimal, fully: bool) -> int:
    """How many of an order's `earned` points must be reversed in all, given what was refunded.

    Pro rata: floor(earned × refunded / total), computed on the cumulative refund (not per
    refund, so rounding never accumulates) and rounded down so a partial refund never takes
    more than its share; a full refund or a cancellation (`fully`) reverses everything.
    """
    if fully or (total > 0 and refunded >= total):
        return earned
    if total <= 0 or refunded <= 0:
        return 0
    return min(earned, floor_points(Decimal(earned) * refunded / total))
