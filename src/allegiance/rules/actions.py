"""Actions of the rule language compiled into ``fire`` closures: what a rule asks for on one event.

Each rule's action is compiled once per rule-set version with its constants prepared (unit, texts,
the exact integer ratio of a percentage). The common case — integer amounts and quantities, no
tier factor — is computed in integers; anything else, and any value the fast path does not take,
goes through :func:`_fire`, the original arithmetic in ``Decimal``. Both give the same firings
(``tests/rules/test_evaluate_index.py`` checks against the reference evaluator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, cast

from allegiance.rules.conditions import Predicate
from allegiance.rules.fields import MISSING, Subject, number, parts_of, read, read_parts
from allegiance.rules.model import (
    Benefit,
    Clawback,
    Fixed,
    Multiplier,
    Percent,
    PerUnit,
    Recipient,
    Rounding,
    Rule,
    Stepped,
    TierCredit,
)

__all__ = ["EXACT_BASE", "EXACT_RATIO_DIGITS", "Fire", "Firing", "LineGroups", "compile_fire", "fmt_number",
           "grouped_lines", "rounded", "stepped_amount"]

LineGroups = dict[tuple[str, tuple[str, ...]], dict[Any, list[int]]]  # per event: (lines path, field) -> value -> lines
# fire(subject, default_unit, tier_multiplier, tier_is_one, line_groups) -> what the rule asks for
Fire = Callable[[Subject, str, Decimal, bool, LineGroups], list["Firing"]]


def rounded(value: Decimal, rounding: Rounding) -> int:
    if value == value.to_integral_value():  # nothing to round (most fixed and per-unit awards)
        return int(value)
    return int(value.quantize(Decimal(1), rounding=ROUND_DOWN if rounding is Rounding.DOWN else ROUND_HALF_UP))


def stepped_amount(steps: Sequence[tuple[int, int]], before: int, quantity: int) -> int:
    """Σ of the per-unit rate for units ``before+1 … before+quantity`` (steps: (from_quantity, rate))."""
    total = 0
    for index, (start, rate) in enumerate(steps):
        end = steps[index + 1][0] if index + 1 < len(steps) else None
        low = max(before, start)
        high = before + quantity if end is None else min(before + quantity, end)
        if high > low:
            total += (high - low) * rate
    return total


@dataclass(frozen=True)
class Firing:
    """What one rule asks for on one event (before caps, steps and timing are settled)."""

    rule: str
    rule_name: str
    kind: str  # award | stepped | tier_credit | benefit | clawback
    amount: int = 0  # award / tier credit, after multipliers; for stepped: the quantity
    unit: str | None = None
    recipient: Recipient = Recipient.SPLIT
    inputs: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    basis: int | None = None  # the measure the amount was computed from (for proportional clawback)
    key: Any = None  # the event's identity for clawbacks and pending releases
    line: int | None = None
    multiplier: Decimal = Decimal(1)  # applied to stepped amounts once they are known
    rounding: Rounding = Rounding.DOWN




def _unit_in(rule: Rule, default_unit: str) -> str:
    return getattr(rule.action, "unit", None) or default_unit


def fmt_number(value: Decimal | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value.normalize():f}"


def _base_award(rule: Rule, subject: Subject, default_unit: str) -> tuple[Decimal, int | None, dict[str, Any], str]:
    """(amount before rounding, basis, inputs, reason) of an awarding action; amount 0 = nothing."""
    action = rule.action
    if isinstance(action, Fixed):
        return Decimal(action.amount), None, {}, f"{action.amount:,} for {rule.name}"
    if isinstance(action, Percent):
        base = number(read(subject, action.of))
        if base is None or base <= 0:
            return Decimal(0), None, {action.of: None}, ""
        amount = base * action.percent / 100 * action.rate
        return amount, int(base), {action.of: _plain(base)}, f"{fmt_number(action.percent)} % of {fmt_number(base)}"
    if isinstance(action, PerUnit):
        raw_quantity = read(subject, action.per)
        if type(raw_quantity) is int:  # the common case, without Decimal
            if raw_quantity <= 0:
                return Decimal(0), None, {action.per: None}, ""
            return (Decimal(action.amount * raw_quantity), raw_quantity, {action.per: raw_quantity},
                    f"{action.amount:,} × {raw_quantity:,}")
        quantity = number(raw_quantity)
        if quantity is None or quantity <= 0:
            return Decimal(0), None, {action.per: None}, ""
        return (Decimal(action.amount) * quantity, int(quantity), {action.per: _plain(quantity)},
                f"{action.amount:,} × {fmt_number(quantity)}")
    raise TypeError(action)


def _plain(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else str(value)


_ONE = cast(Decimal, Firing.__dataclass_fields__["multiplier"].default)  # the object Firing() holds by default
_new_object = object.__new__


def new_firing(rule: str, rule_name: str, kind: str, amount: int, unit: str | None, recipient: Recipient,
                inputs: dict[str, Any], reason: str, basis: int | None, key: Any, line: int | None,
                multiplier: Decimal, rounding: Rounding) -> Firing:
    """``Firing(...)`` with every field given, without the generated frozen ``__init__``: that one
    sets each of the 13 fields through ``object.__setattr__`` (about 2 µs, as much as computing the
    award). The instance is the same — same fields in the same order, still frozen."""
    firing = _new_object(Firing)
    firing.__dict__.update(rule=rule, rule_name=rule_name, kind=kind, amount=amount, unit=unit, recipient=recipient,
                           inputs=inputs, reason=reason, basis=basis, key=key, line=line, multiplier=multiplier,
                           rounding=rounding)
    return firing


# -- compiled actions ------------------------------------------------------------------------

# Below these, integer arithmetic gives exactly what Decimal's 28 significant digits give (a
# base of at most 16 digits times a percentage and a rate of at most 12 digits together).
EXACT_BASE = 10**16
EXACT_RATIO_DIGITS = 12


@dataclass(frozen=True)
class _IntAward:
    """An award from a positive integer field, computed in integers (see :func:`_int_award`)."""

    path: str  # the field read (payload.amount_minor, line.quantity, …)
    amount: Callable[[int], int | None]  # rounded as the action says; None: only Decimal is exact here
    reason: Callable[[int], str]  # worded as _base_award words it


def _int_award(action: Percent | PerUnit) -> _IntAward | None:
    """The integer form of a percent or per-unit action; ``None`` if it has none."""
    if isinstance(action, PerUnit):
        per_unit = action.amount
        return _IntAward(action.per, lambda quantity: per_unit * quantity,
                         lambda quantity: f"{per_unit:,} × {quantity:,}")
    if len(action.percent.as_tuple().digits) + len(action.rate.as_tuple().digits) > EXACT_RATIO_DIGITS:
        return None
    percent_num, percent_den = action.percent.as_integer_ratio()
    rate_num, rate_den = action.rate.as_integer_ratio()
    num, den = percent_num * rate_num, 100 * percent_den * rate_den
    percent = fmt_number(action.percent)

    def reason(base: int) -> str:
        return f"{percent} % of {base}"  # what fmt_number(Decimal(base)) gives for an int

    if action.rounding is Rounding.DOWN:
        return _IntAward(action.of, lambda base: base * num // den if base < EXACT_BASE else None, reason)
    return _IntAward(action.of, lambda base: (2 * base * num + den) // (2 * den) if base < EXACT_BASE else None,
                     reason)


def _no_amount(_: int) -> int | None:
    return None


def _no_reason(_: int) -> str:
    return ""


def compile_fire(rule: Rule, line_when: tuple[Predicate, ...],
                 line_key: tuple[int, tuple[str, ...], Any] | None) -> Fire:
    """The rule's ``fire`` closure. Fixed, percent and per-unit awards get a fast path for integer
    inputs without a tier factor (the common case); everything else — and any value the fast path
    does not take — goes through :func:`_fire`, the general arithmetic in Decimal."""
    action = rule.action
    grouping = None if line_key is None else line_key[1:]

    def general(subject: Subject, default_unit: str, tier_multiplier: Decimal, tier_is_one: bool,
                line_groups: LineGroups) -> list[Firing]:
        return _fire(rule, line_when, subject, default_unit, tier_multiplier, grouping, line_groups)

    if isinstance(action, Fixed):
        fixed: tuple[int, str] | None = (action.amount, f"{action.amount:,} for {rule.name}")
        integer = None
    elif isinstance(action, Percent | PerUnit):
        fixed, integer = None, _int_award(action)
        if integer is None:
            return general
    else:
        return general
    code, name, recipient, rounding, own_unit = rule.code, rule.name, rule.recipient, action.rounding, action.unit
    tiered = rule.tier_multiplier
    key_parts = parts_of(rule.key) if rule.key else None
    if integer is not None:
        path, amount_of, reason_of = integer.path, integer.amount, integer.reason
    else:  # fixed
        path, amount_of, reason_of = "", _no_amount, _no_reason

    if rule.lines is None:
        parts = parts_of(path) if integer is not None else ()

        def fire(subject: Subject, default_unit: str, tier_multiplier: Decimal, tier_is_one: bool,
                 line_groups: LineGroups) -> list[Firing]:
            if tiered and not tier_is_one:
                return general(subject, default_unit, tier_multiplier, tier_is_one, line_groups)
            if fixed is not None:
                amount, basis, inputs, reason = fixed[0], None, {}, fixed[1]
            else:
                value = read_parts(subject, parts)
                if type(value) is not int:
                    return general(subject, default_unit, tier_multiplier, tier_is_one, line_groups)
                if value <= 0:
                    return []
                computed = amount_of(value)
                if computed is None:
                    return general(subject, default_unit, tier_multiplier, tier_is_one, line_groups)
                if computed <= 0:
                    return []
                amount, basis, inputs, reason = computed, value, {path: value}, reason_of(value)
            key = read_parts(subject, key_parts) if key_parts is not None else None
            return [new_firing(code, name, "award", amount, own_unit or default_unit, recipient, inputs, reason,
                                basis, None if key is MISSING else key, None, _ONE, rounding)]

        return fire

    lines_path = rule.lines.path
    lines_parts = parts_of(lines_path)
    skip = None if line_key is None else line_key[0]
    rest = tuple(p for n, p in enumerate(line_when) if n != skip)  # what the grouping leaves
    in_line = path.startswith("line.")
    parts = () if integer is None else parts_of(path)[1:] if in_line else parts_of(path)

    def fire_lines(subject: Subject, default_unit: str, tier_multiplier: Decimal, tier_is_one: bool,
                   line_groups: LineGroups) -> list[Firing]:
        if tiered and not tier_is_one:
            return general(subject, default_unit, tier_multiplier, tier_is_one, line_groups)
        items = read_parts(subject, lines_parts)
        if not isinstance(items, list):
            return []
        matching = _lines_matching(items, lines_path, grouping, line_groups)
        if not matching:
            return []
        key = read_parts(subject, key_parts) if key_parts is not None else None
        key = None if key is MISSING else key
        unit = own_unit or default_unit
        firings = []
        for index in matching:
            item = items[index]
            if type(item) is not dict and not isinstance(item, Mapping):
                continue
            if rest:
                line_subject = {**subject, "line": item}
                if not all(p(line_subject) for p in rest):
                    continue
            if fixed is not None:
                firings.append(new_firing(code, name, "award", fixed[0], unit, recipient, {"line": index}, fixed[1],
                                           None, key, index, _ONE, rounding))
                continue
            value = read_parts(item, parts) if in_line else read_parts(subject, parts)
            computed = amount_of(value) if type(value) is int and value > 0 else None
            if computed is None:
                if type(value) is not int or value > 0:  # not an integer, or too large: the general way
                    firings.extend(_line_award(rule, {**subject, "line": item}, default_unit, tier_multiplier, unit,
                                               key, index))
                continue
            if computed > 0:
                firings.append(new_firing(code, name, "award", computed, unit, recipient, {path: value, "line": index},
                                           reason_of(value), value, key, index, _ONE, rounding))
        return firings

    return fire_lines


def _lines_matching(items: list[Any], path: str, key: tuple[tuple[str, ...], Any] | None,
                    cache: LineGroups) -> Iterable[int]:
    """Indexes of the line items a rule may fire on: all, or — when the rule has a ``line.x eq v``
    condition — those whose ``x`` is ``v``, grouped once per event and line field for every rule."""
    if key is None:
        return range(len(items))
    parts, value = key
    groups = cache.get((path, parts))
    if groups is None:
        groups = cache[(path, parts)] = grouped_lines(items, parts)
    return groups.get(value, ())


def grouped_lines(items: list[Any], parts: tuple[str, ...]) -> dict[Any, list[int]]:
    """value of the line field -> indexes of the lines with that value (lines that are not objects,
    or whose value is unhashable, are in no group: they equal no condition value)."""
    groups: dict[Any, list[int]] = {}
    for position, item in enumerate(items):
        if type(item) is dict or isinstance(item, Mapping):
            try:
                groups.setdefault(read_parts(item, parts), []).append(position)
            except TypeError:
                continue
    return groups


def _fire(rule: Rule, line_when: tuple[Predicate, ...], subject: Subject, default_unit: str, tier_multiplier: Decimal,
          line_key: tuple[tuple[str, ...], Any] | None = None,
          line_cache: dict[tuple[str, tuple[str, ...]], dict[Any, list[int]]] | None = None) -> list[Firing]:
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
                       inputs=inputs,
                       reason=f"return of {key_value}", basis=None if measure is None else int(measure),
                       key=key_value)]
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
                       {action.of: _plain(base)},
                       f"{fmt_number(action.percent)} % of {fmt_number(base)} as qualifying credits",
                       key=key)] if credit > 0 else []
    unit = _unit_in(rule, default_unit)
    factor = tier_multiplier if rule.tier_multiplier else Decimal(1)
    if isinstance(action, Stepped):
        quantity = number(read(subject, action.per))
        if quantity is None or quantity <= 0:
            return []
        return [Firing(rule.code, rule.name, "stepped", int(quantity), unit, rule.recipient,
                       {action.per: _plain(quantity)},
                       f"{fmt_number(quantity)} units on the {action.period} volume ladder",
                       basis=int(quantity), key=key, multiplier=factor, rounding=action.rounding)]
    if rule.lines is None:
        raw, basis, inputs, reason = _base_award(rule, subject, default_unit)
        return _award(rule, raw * factor, basis, inputs, _tiered(reason, factor), unit, key, None)
    firings = []
    items = read(subject, rule.lines.path)
    if not isinstance(items, list):
        return []
    for index in _lines_matching(items, rule.lines.path, line_key, {} if line_cache is None else line_cache):
        item = items[index]
        if not isinstance(item, Mapping):
            continue
        line_subject = {**subject, "line": item}
        if not all(p(line_subject) for p in line_when):
            continue
        firings.extend(_line_award(rule, line_subject, default_unit, tier_multiplier, unit, key, index))
    return firings


def _line_award(rule: Rule, line_subject: Subject, default_unit: str, tier_multiplier: Decimal, unit: str, key: Any,
                index: int) -> list[Firing]:
    """What an award rule gives for one line item that meets its line conditions."""
    factor = tier_multiplier if rule.tier_multiplier else Decimal(1)
    raw, basis, inputs, reason = _base_award(rule, line_subject, default_unit)
    return _award(rule, raw * factor, basis, {**inputs, "line": index}, _tiered(reason, factor), unit, key, index)


def _tiered(reason: str, factor: Decimal) -> str:
    return reason if factor == 1 else f"{reason} × {fmt_number(factor)} (tier)"


def _award(rule: Rule, raw: Decimal, basis: int | None, inputs: dict[str, Any], reason: str, unit: str, key: Any,
           line: int | None) -> list[Firing]:
    rounding = getattr(rule.action, "rounding", Rounding.DOWN)
    amount = rounded(raw, rounding)
    if amount <= 0:
        return []
    return [Firing(rule.code, rule.name, "award", amount, unit, rule.recipient, inputs, reason, basis, key, line,
                   rounding=rounding)]
