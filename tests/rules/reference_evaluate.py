"""The straightforward evaluation of a rule set, kept as the oracle of the optimized one.

This is ``allegiance.rules.evaluate.evaluate`` as it was before the evaluation-speed work (issue 4),
with every shortcut taken out: every enabled rule of the trigger is visited in priority order, its
validity window compared, each condition interpreted per event, each line item tested against
each line rule, awards computed in ``Decimal`` and multipliers applied by ``dataclasses.replace``.
Nothing here is imported by the application; only ``Firing`` (the result type) is shared, so the
property test in ``test_evaluate_index.py`` compares two independent implementations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from allegiance.rules.evaluate import Firing
from allegiance.rules.model import (
    Benefit,
    Clawback,
    Condition,
    Fixed,
    Multiplier,
    Op,
    Percent,
    PerUnit,
    Rounding,
    Rule,
    RuleSet,
    Stepped,
    TierCredit,
)

MISSING = object()


def read(subject: Any, path: str) -> Any:
    current = subject
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float | str):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def holds(condition: Condition, subject: Any) -> bool:
    path, op, expected = condition.field, condition.op, condition.value
    values = [read(subject, path)]
    if path == "participant.role":
        roles = read(subject, "participant.roles")
        if isinstance(roles, list) and roles:
            values = roles
    return any(_compare(op, expected, value) for value in values)


def _compare(op: Op, expected: Any, value: Any) -> bool:
    if op is Op.EXISTS:
        present = value is not MISSING and value is not None
        return present if expected in (None, True) else not present
    if value is MISSING or value is None:
        return op in (Op.NE, Op.NOT_IN)
    if op is Op.EQ:
        return bool(value == expected)
    if op is Op.NE:
        return bool(value != expected)
    if op is Op.IN:
        return value in expected
    if op is Op.NOT_IN:
        return value not in expected
    if op is Op.CONTAINS:
        return expected in value if isinstance(value, list | str) else False
    a, b = number(value), number(expected)
    if a is None or b is None:
        if not (isinstance(value, str) and isinstance(expected, str)):
            return False
        a, b = value, expected  # type: ignore[assignment]
    if op is Op.GT:
        return bool(a > b)  # type: ignore[operator]
    if op is Op.GTE:
        return bool(a >= b)  # type: ignore[operator]
    if op is Op.LT:
        return bool(a < b)  # type: ignore[operator]
    return bool(a <= b)  # type: ignore[operator]


def rounded(value: Decimal, rounding: Rounding) -> int:
    if value == value.to_integral_value():
        return int(value)
    return int(value.quantize(Decimal(1), rounding=ROUND_DOWN if rounding is Rounding.DOWN else ROUND_HALF_UP))


def _fmt(value: Decimal | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value.normalize():f}"


def _plain(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else str(value)


def reference_evaluate(rule_set: RuleSet, event_type: str, occurred_at: datetime, subject: Mapping[str, Any], *,
                       default_unit: str, tier_multiplier: Decimal = Decimal(1),
                       fired: list[str] | None = None) -> list[Firing]:
    firings: list[Firing] = []
    multipliers: list[Multiplier] = []
    fired_groups: set[str] = set()
    rules = sorted((r for r in rule_set.rules if r.enabled and r.trigger == event_type),
                   key=lambda r: (r.priority, r.code))
    for rule in rules:
        if rule.group and rule.group in fired_groups:
            continue
        if (rule.valid_from and occurred_at < rule.valid_from) or (rule.valid_to and occurred_at >= rule.valid_to):
            continue
        if not all(holds(c, subject) for c in rule.conditions if not c.field.startswith("line.")):
            continue
        produced = _fire(rule, subject, default_unit, tier_multiplier)
        if isinstance(rule.action, Multiplier):
            multipliers.append(rule.action)
            produced = [Firing(rule.code, rule.name, "multiplier", inputs={"factor": str(rule.action.factor)},
                               reason=f"× {_fmt(rule.action.factor)}")]
        if not produced:
            continue
        if fired is not None:
            fired.append(rule.code)
        firings.extend(produced)
        if rule.group:
            fired_groups.add(rule.group)
        if rule.exclusive:
            break
    if multipliers:
        firings = [_multiplied(f, multipliers) for f in firings]
    return [f for f in firings if f.kind != "multiplier"]


def _multiplied(firing: Firing, multipliers: list[Multiplier]) -> Firing:
    if firing.kind not in ("award", "stepped"):
        return firing
    factor = Decimal(1)
    for m in multipliers:
        if not m.units or firing.unit in m.units:
            factor *= m.factor
    if factor == 1:
        return firing
    reason = f"{firing.reason} × {_fmt(factor)}"
    if firing.kind == "stepped":
        return replace(firing, multiplier=firing.multiplier * factor, reason=reason)
    return replace(firing, amount=rounded(Decimal(firing.amount) * factor, firing.rounding), reason=reason)


def _base_award(rule: Rule, subject: Any) -> tuple[Decimal, int | None, dict[str, Any], str]:
    action = rule.action
    if isinstance(action, Fixed):
        return Decimal(action.amount), None, {}, f"{action.amount:,} for {rule.name}"
    if isinstance(action, Percent):
        base = number(read(subject, action.of))
        if base is None or base <= 0:
            return Decimal(0), None, {action.of: None}, ""
        amount = base * action.percent / 100 * action.rate
        return amount, int(base), {action.of: _plain(base)}, f"{_fmt(action.percent)} % of {_fmt(base)}"
    if isinstance(action, PerUnit):
        raw_quantity = read(subject, action.per)
        if type(raw_quantity) is int:  # an int quantity is shown with thousands separators
            if raw_quantity <= 0:
                return Decimal(0), None, {action.per: None}, ""
            return (Decimal(action.amount * raw_quantity), raw_quantity, {action.per: raw_quantity},
                    f"{action.amount:,} × {raw_quantity:,}")
        quantity = number(raw_quantity)
        if quantity is None or quantity <= 0:
            return Decimal(0), None, {action.per: None}, ""
        return (Decimal(action.amount) * quantity, int(quantity), {action.per: _plain(quantity)},
                f"{action.amount:,} × {_fmt(quantity)}")
    raise TypeError(action)


def _fire(rule: Rule, subject: Any, default_unit: str, tier_multiplier: Decimal) -> list[Firing]:
    action = rule.action
    key = read(subject, rule.key) if rule.key else None
    key = None if key is MISSING else key
    if isinstance(action, Multiplier):
        return []
    if isinstance(action, Benefit):
        return [Firing(rule.code, rule.name, "benefit", action.quantity, None, rule.recipient,
                       {"benefit": action.code}, action.description, key=key)]
    if isinstance(action, Clawback):
        measure = number(read(subject, action.amount)) if action.amount else None
        key_value = read(subject, action.key)
        if key_value is MISSING:
            return []
        inputs: dict[str, Any] = {action.key: key_value}
        if action.amount and measure is not None:
            inputs[action.amount] = _plain(measure)
        return [Firing(rule.code, rule.name, "clawback", int(measure) if measure is not None else 0, None,
                       inputs=inputs, reason=f"return of {key_value}",
                       basis=None if measure is None else int(measure), key=key_value)]
    if isinstance(action, TierCredit):
        if action.amount is not None:
            return [Firing(rule.code, rule.name, "tier_credit", action.amount, None, rule.recipient,
                           reason=f"{action.amount:,} qualifying credits", key=key)]
        base = number(read(subject, action.of))
        assert action.percent is not None
        if base is None or base <= 0:
            return []
        credit = rounded(base * action.percent / 100, Rounding.DOWN)
        return [Firing(rule.code, rule.name, "tier_credit", credit, None, rule.recipient,
                       {action.of: _plain(base)}, f"{_fmt(action.percent)} % of {_fmt(base)} as qualifying credits",
                       key=key)] if credit > 0 else []
    unit = getattr(rule.action, "unit", None) or default_unit
    factor = tier_multiplier if rule.tier_multiplier else Decimal(1)
    if isinstance(action, Stepped):
        quantity = number(read(subject, action.per))
        if quantity is None or quantity <= 0:
            return []
        return [Firing(rule.code, rule.name, "stepped", int(quantity), unit, rule.recipient,
                       {action.per: _plain(quantity)}, f"{_fmt(quantity)} units on the {action.period} volume ladder",
                       basis=int(quantity), key=key, multiplier=factor, rounding=action.rounding)]
    tiered = (lambda reason: reason) if factor == 1 else (lambda reason: f"{reason} × {_fmt(factor)} (tier)")
    if rule.lines is None:
        raw, basis, inputs, reason = _base_award(rule, subject)
        return _award(rule, raw * factor, basis, inputs, tiered(reason), unit, key, None)
    firings = []
    items = read(subject, rule.lines.path)
    if not isinstance(items, list):
        return []
    line_conditions = [c for c in rule.conditions if c.field.startswith("line.")] + rule.lines.conditions
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        line_subject = {**subject, "line": item}
        if not all(holds(c, line_subject) for c in line_conditions):
            continue
        raw, basis, inputs, reason = _base_award(rule, line_subject)
        firings.extend(_award(rule, raw * factor, basis, {**inputs, "line": index}, tiered(reason), unit, key,
                              index))
    return firings


def _award(rule: Rule, raw: Decimal, basis: int | None, inputs: dict[str, Any], reason: str, unit: str, key: Any,
           line: int | None) -> list[Firing]:
    rounding = getattr(rule.action, "rounding", Rounding.DOWN)
    amount = rounded(raw, rounding)
    if amount <= 0:
        return []
    return [Firing(rule.code, rule.name, "award", amount, unit, rule.recipient, inputs, reason, basis, key, line,
                   rounding=rounding)]
