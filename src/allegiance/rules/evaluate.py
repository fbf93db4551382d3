"""Pure evaluation of a compiled rule set against one event: which rules fire and what they ask for.

No I/O and no state: caps, stepped counters and pending timing need the database (or, in a
backtest, an in-memory stand-in), so they are settled afterwards by :mod:`allegiance.rules.settle`.

Evaluating a hundred rules per event in a few microseconds (issue 4; design in docs/rules.md,
"Evaluation speed") rests on doing per rule-set version what does not depend on the event:

- conditions are compiled once into closures (:func:`compile_condition`);
- a per-trigger :class:`~allegiance.rules.index.TriggerIndex` hands back only the rules that can
  fire, equality conditions and validity windows already decided by look-ups;
- each rule's action is compiled into a ``fire`` closure with its constants (unit, texts, the
  exact integer ratio of a percentage) prepared; the common case — integer amounts and
  quantities, no tier factor — is computed in integers, anything else takes the general path
  (:func:`_fire`), which is the original arithmetic in ``Decimal``;
- line rules with a ``line.x eq v`` condition visit only the lines whose ``x`` is ``v``, the lines
  grouped once per event and field for all rules.

Results are identical to the straightforward algorithm (every rule, every condition, every line,
all in ``Decimal``): ``tests/rules/test_evaluate_index.py`` compares the two on random rule sets.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, cast

from allegiance.rules.fields import MISSING, Subject, number, parts_of, read, read_parts
from allegiance.rules.index import Entry, TriggerIndex, equality_position
from allegiance.rules.model import (
    AWARDING,
    Benefit,
    Cap,
    Clawback,
    Condition,
    Contest,
    Fixed,
    Multiplier,
    Op,
    Percent,
    PerUnit,
    Recipient,
    Rounding,
    Rule,
    RuleSet,
    Stepped,
    TierCredit,
)

__all__ = ["MISSING", "CompiledRule", "CompiledRuleSet", "Firing", "Subject", "caps_of", "compile_condition",
           "compile_rule_set", "contest_entries", "evaluate", "number", "read", "read_parts", "rounded",
           "stepped_amount"]

Predicate = Callable[[Subject], bool]
LineGroups = dict[tuple[str, tuple[str, ...]], dict[Any, list[int]]]  # per event: (lines path, field) -> value -> lines
# fire(subject, default_unit, tier_multiplier, tier_is_one, line_groups) -> what the rule asks for
Fire = Callable[[Subject, str, Decimal, bool, LineGroups], list["Firing"]]
LineTest = tuple[tuple[str, tuple[str, ...]], tuple[str, ...], Any]  # ((lines path, field), lines path split, value)


def _ordered(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Comparable pair: numbers as Decimals, else two strings (ISO dates compare as text)."""
    a, b = number(left), number(right)
    if a is not None and b is not None:
        return a, b
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


_ORDERING: dict[Op, Callable[[Any, Any], bool]] = {Op.GT: operator.gt, Op.GTE: operator.ge, Op.LT: operator.lt,
                                                   Op.LTE: operator.le}


def compile_condition(condition: Condition) -> Predicate:
    """A predicate for one condition; the common shapes (eq / in / ne / not_in on any field but
    ``participant.role``) get a closure that reads the field once and compares, nothing else; a
    threshold with an integer value compares an integer field without converting both to Decimal
    (the same answer: Decimal holds any integer exactly)."""
    path, op, expected = condition.field, condition.op, condition.value
    parts = parts_of(path)
    if path != "participant.role":
        if op is Op.EQ:
            return lambda subject: bool(read_parts(subject, parts) == expected)
        if op is Op.IN:
            def is_in(subject: Subject) -> bool:
                value = read_parts(subject, parts)
                return value is not MISSING and value is not None and value in expected
            return is_in
        if op is Op.NE:
            return lambda subject: bool(read_parts(subject, parts) != expected)
        if op is Op.NOT_IN:
            def not_in(subject: Subject) -> bool:
                value = read_parts(subject, parts)
                return value is MISSING or value is None or value not in expected
            return not_in
        if op in _ORDERING and type(expected) is int:
            ordering, compare = _ORDERING[op], _comparison(op, expected)

            def threshold(subject: Subject) -> bool:
                value = read_parts(subject, parts)
                return ordering(value, expected) if type(value) is int else compare(value)
            return threshold
    return _general_condition(path, op, expected)


def _general_condition(path: str, op: Op, expected: Any) -> Predicate:
    compare = _comparison(op, expected)

    def values(subject: Subject) -> list[Any]:
        """A participant may hold several roles: a condition on ``participant.role`` matches any."""
        value = read(subject, path)
        if path == "participant.role":
            roles = read(subject, "participant.roles")
            if isinstance(roles, list) and roles:
                return roles
        return [value]

    return lambda subject: any(compare(v) for v in values(subject))


def _comparison(op: Op, expected: Any) -> Callable[[Any], bool]:
    """``value op expected`` for one value of the field, as the rule language defines it."""

    def compare(value: Any) -> bool:
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
        pair = _ordered(value, expected)
        if pair is None:
            return False
        a, b = pair
        if op is Op.GT:
            return bool(a > b)
        if op is Op.GTE:
            return bool(a >= b)
        if op is Op.LT:
            return bool(a < b)
        return bool(a <= b)

    return compare


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


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    when: tuple[Predicate, ...]
    line_when: tuple[Predicate, ...]
    caps: tuple[Cap, ...]


@dataclass(frozen=True)
class CompiledContest:
    contest: Contest
    when: tuple[Predicate, ...]


class _Step(NamedTuple):
    """A rule as the evaluation loop needs it (a tuple: unpacked in one go, per rule and event)."""

    code: str
    group: str | None
    exclusive: bool
    rest: tuple[Predicate, ...]  # the conditions the index has not decided
    fire: Fire
    multiplier: Multiplier | None
    lines: LineTest | None  # a line rule with ``line.x eq v``: fires only if some line has x = v


@dataclass
class CompiledRuleSet:
    version: int
    rule_set: RuleSet
    by_trigger: dict[str, list[CompiledRule]]
    release_types: frozenset[str]  # event types that release pending awards
    contests: dict[str, list[CompiledContest]] = field(default_factory=dict)  # event type -> contests it feeds
    by_code: dict[str, CompiledRule] = field(default_factory=dict, repr=False)
    indexes: dict[str, TriggerIndex[_Step]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.by_code = {c.rule.code: c for rules in self.by_trigger.values() for c in rules}
        self.indexes = {trigger: _trigger_index(rules) for trigger, rules in self.by_trigger.items()}

    def rules_for(self, event_type: str) -> list[CompiledRule]:
        return self.by_trigger.get(event_type, [])

    def compiled(self, code: str) -> CompiledRule | None:
        """The enabled rule ``code`` (a dict look-up: called once per firing)."""
        return self.by_code.get(code)


def _outside_lines(rule: Rule) -> list[Condition]:
    """The conditions tested once per event (``CompiledRule.when``, in this order)."""
    return [c for c in rule.conditions if not c.field.startswith("line.")]


def _line_conditions(rule: Rule) -> list[Condition]:
    """The conditions tested per line item (``CompiledRule.line_when``, in this order)."""
    return [c for c in rule.conditions if c.field.startswith("line.")] + (rule.lines.conditions if rule.lines else [])


def _line_key(rule: Rule) -> tuple[int, tuple[str, ...], Any] | None:
    """(position in ``line_when``, field inside the line, value) of the ``line.x eq v`` condition
    that groups the lines, if the rule has one. Only ``line.*`` fields can: a ``lines`` condition on
    ``payload.*`` or ``organization.*`` says nothing about which line it is."""
    conditions = _line_conditions(rule)
    candidates = [(p, c) for p, c in enumerate(conditions) if c.field.startswith("line.")]
    found = equality_position([c for _, c in candidates])
    if found is None:
        return None
    position, condition = candidates[found]
    return position, parts_of(condition.field)[1:], condition.value


def _trigger_index(rules: Sequence[CompiledRule]) -> TriggerIndex[_Step]:
    """The index of one trigger's rules (in priority order): each filed under its first decidable
    equality, with the conditions left to test, its compiled action and its line test."""
    entries = []
    for compiled_rule in rules:
        rule = compiled_rule.rule
        outside = _outside_lines(rule)
        position = equality_position(outside)
        equality = None if position is None else (parts_of(outside[position].field), outside[position].value)
        rest = tuple(p for n, p in enumerate(compiled_rule.when) if n != position)
        multiplier = rule.action if isinstance(rule.action, Multiplier) else None
        line_key = _line_key(rule)
        lines = None if line_key is None or rule.lines is None else (
            (rule.lines.path, line_key[1]), parts_of(rule.lines.path), line_key[2])
        step = _Step(rule.code, rule.group or None, rule.exclusive, rest, _compile_fire(compiled_rule, line_key),
                     multiplier, lines)
        entries.append(Entry(step, equality, rule.valid_from, rule.valid_to))
    return TriggerIndex(entries)


def caps_of(rule_set: RuleSet, rule: Rule) -> tuple[Cap, ...]:
    """A cap covers the rules it names, plus the rules naming it; one named by nobody covers every
    awarding rule of its unit."""
    referenced = {code for r in rule_set.rules for code in r.caps}
    found = []
    for cap in rule_set.caps:
        named = rule.code in cap.rules or cap.code in rule.caps
        blanket = not cap.rules and cap.code not in referenced
        if named or (blanket and rule.action.kind in AWARDING):
            found.append(cap)
    return tuple(found)


def compile_rule_set(rule_set: RuleSet, version: int) -> CompiledRuleSet:
    by_trigger: dict[str, list[CompiledRule]] = {}
    for rule in sorted(rule_set.rules, key=lambda r: (r.priority, r.code)):
        if not rule.enabled:
            continue
        by_trigger.setdefault(rule.trigger, []).append(CompiledRule(
            rule, tuple(compile_condition(c) for c in _outside_lines(rule)),
            tuple(compile_condition(c) for c in _line_conditions(rule)), caps_of(rule_set, rule)))
    releases = frozenset(r.timing.until_event for r in rule_set.rules if r.enabled and r.timing.until_event)
    contests: dict[str, list[CompiledContest]] = {}
    for contest in rule_set.contests:
        compiled_contest = CompiledContest(contest, tuple(compile_condition(c) for c in contest.conditions))
        for event_type in contest.measure.event_types:
            contests.setdefault(event_type, []).append(compiled_contest)
    return CompiledRuleSet(version, rule_set, by_trigger, releases, contests)


def contest_entries(compiled: CompiledRuleSet, event_type: str, subject: Subject) -> list[tuple[Contest, int]]:
    """The contests this event counts towards, with how much it adds to the organization's score."""
    entries = []
    for compiled_contest in compiled.contests.get(event_type, []):
        if not all(p(subject) for p in compiled_contest.when):
            continue
        measure = compiled_contest.contest.measure
        if measure.field is None:
            entries.append((compiled_contest.contest, 1))
            continue
        value = number(read(subject, measure.field))
        if value is not None and value != 0:
            entries.append((compiled_contest.contest, int(value)))
    return entries


def _unit_in(rule: Rule, default_unit: str) -> str:
    return getattr(rule.action, "unit", None) or default_unit


def _fmt(value: Decimal | int) -> str:
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
        return amount, int(base), {action.of: _plain(base)}, f"{_fmt(action.percent)} % of {_fmt(base)}"
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
                f"{action.amount:,} × {_fmt(quantity)}")
    raise TypeError(action)


def _plain(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else str(value)


def evaluate(compiled: CompiledRuleSet, event_type: str, occurred_at: datetime, subject: Subject, *,
             default_unit: str, tier_multiplier: Decimal = Decimal(1), fired: list[str] | None = None) -> list[Firing]:
    """Every firing of the active rules for one event, in priority order, multipliers applied.
    ``fired`` (if given) collects the code of every rule that fired, multipliers included.

    Rules run in priority order; a rule whose group already fired is skipped; a rule fires when
    its conditions hold and it asks for something (a multiplier always does); an exclusive rule
    that fires stops the rest. The index has already left out the rules outside their validity
    window and those whose equality condition the event does not meet."""
    index = compiled.indexes.get(event_type)
    if index is None:
        return []
    firings: list[Firing] = []
    multipliers: list[Multiplier] = []
    fired_groups: set[str] = set()
    line_groups: LineGroups = {}
    tier_is_one = isinstance(tier_multiplier, Decimal | int) and tier_multiplier == 1
    for code, group, exclusive, rest, fire, multiplier, lines in index.candidates(occurred_at, subject):
        if group is not None and group in fired_groups:
            continue
        if lines is not None:  # no line has the value: the rule has nothing to fire on
            groups = line_groups.get(lines[0])
            if groups is None:
                items = read_parts(subject, lines[1])
                groups = line_groups[lines[0]] = _grouped(items, lines[0][1]) if isinstance(items, list) else {}
            if lines[2] not in groups:
                continue
        if rest:
            passed = True
            for predicate in rest:
                if not predicate(subject):
                    passed = False
                    break
            if not passed:
                continue
        if multiplier is not None:
            multipliers.append(multiplier)
        else:
            produced = fire(subject, default_unit, tier_multiplier, tier_is_one, line_groups)
            if not produced:
                continue
            firings.extend(produced)
        if fired is not None:
            fired.append(code)
        if group is not None:
            fired_groups.add(group)
        if exclusive:
            break
    return _multiplied(firings, multipliers) if multipliers else firings


def _multiplied(firings: list[Firing], multipliers: list[Multiplier]) -> list[Firing]:
    """Awards (and ladder firings) times the product of the multipliers that fired for their unit.

    The product stays a Decimal; an award of at most 16 digits times a factor of at most 12 is
    rounded in integers, which is exact (Decimal keeps 28 significant digits). The firings were
    all made by this call and nobody has seen them yet, so they are updated in place rather than
    rebuilt (what ``dataclasses.replace`` would give, at a fraction of the cost)."""
    factors: dict[str | None, tuple[Decimal, str, bool, int, int] | None] = {}
    for firing in firings:
        kind = firing.kind
        if kind != "award" and kind != "stepped":
            continue
        unit = firing.unit
        if unit in factors:
            found = factors[unit]
        else:
            factor = Decimal(1)
            for m in multipliers:
                if not m.units or unit in m.units:
                    factor *= m.factor
            found = factors[unit] = None if factor == 1 else (
                factor, f" × {_fmt(factor)}", len(factor.as_tuple().digits) <= _EXACT_RATIO_DIGITS,
                *factor.as_integer_ratio())
        if found is None:
            continue
        factor, suffix, short, num, den = found
        fields = firing.__dict__
        fields["reason"] = firing.reason + suffix
        if kind == "stepped":
            fields["multiplier"] = firing.multiplier * factor
        elif short and firing.amount < _EXACT_BASE:
            amount = firing.amount
            fields["amount"] = amount * num // den if firing.rounding is Rounding.DOWN else \
                (2 * amount * num + den) // (2 * den)
        else:
            fields["amount"] = rounded(Decimal(firing.amount) * factor, firing.rounding)
    return firings


_ONE = cast(Decimal, Firing.__dataclass_fields__["multiplier"].default)  # the object Firing() holds by default
_new_object = object.__new__


def _new_firing(rule: str, rule_name: str, kind: str, amount: int, unit: str | None, recipient: Recipient,
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
_EXACT_BASE = 10**16
_EXACT_RATIO_DIGITS = 12


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
    if len(action.percent.as_tuple().digits) + len(action.rate.as_tuple().digits) > _EXACT_RATIO_DIGITS:
        return None
    percent_num, percent_den = action.percent.as_integer_ratio()
    rate_num, rate_den = action.rate.as_integer_ratio()
    num, den = percent_num * rate_num, 100 * percent_den * rate_den
    percent = _fmt(action.percent)

    def reason(base: int) -> str:
        return f"{percent} % of {base}"  # what _fmt(Decimal(base)) gives for an int

    if action.rounding is Rounding.DOWN:
        return _IntAward(action.of, lambda base: base * num // den if base < _EXACT_BASE else None, reason)
    return _IntAward(action.of, lambda base: (2 * base * num + den) // (2 * den) if base < _EXACT_BASE else None,
                     reason)


def _no_amount(_: int) -> int | None:
    return None


def _no_reason(_: int) -> str:
    return ""


def _compile_fire(compiled_rule: CompiledRule, line_key: tuple[int, tuple[str, ...], Any] | None) -> Fire:
    """The rule's ``fire`` closure. Fixed, percent and per-unit awards get a fast path for integer
    inputs without a tier factor (the common case); everything else — and any value the fast path
    does not take — goes through :func:`_fire`, the general arithmetic in Decimal."""
    rule = compiled_rule.rule
    action = rule.action
    grouping = None if line_key is None else line_key[1:]

    def general(subject: Subject, default_unit: str, tier_multiplier: Decimal, tier_is_one: bool,
                line_groups: LineGroups) -> list[Firing]:
        return _fire(compiled_rule, subject, default_unit, tier_multiplier, grouping, line_groups)

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
            return [_new_firing(code, name, "award", amount, own_unit or default_unit, recipient, inputs, reason,
                                basis, None if key is MISSING else key, None, _ONE, rounding)]

        return fire

    lines_path = rule.lines.path
    lines_parts = parts_of(lines_path)
    skip = None if line_key is None else line_key[0]
    rest = tuple(p for n, p in enumerate(compiled_rule.line_when) if n != skip)  # what the grouping leaves
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
                firings.append(_new_firing(code, name, "award", fixed[0], unit, recipient, {"line": index}, fixed[1],
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
                firings.append(_new_firing(code, name, "award", computed, unit, recipient, {path: value, "line": index},
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
        groups = cache[(path, parts)] = _grouped(items, parts)
    return groups.get(value, ())


def _grouped(items: list[Any], parts: tuple[str, ...]) -> dict[Any, list[int]]:
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


def _fire(compiled_rule: CompiledRule, subject: Subject, default_unit: str, tier_multiplier: Decimal,
          line_key: tuple[tuple[str, ...], Any] | None = None,
          line_cache: dict[tuple[str, tuple[str, ...]], dict[Any, list[int]]] | None = None) -> list[Firing]:
    rule = compiled_rule.rule
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
                       {action.of: _plain(base)}, f"{_fmt(action.percent)} % of {_fmt(base)} as qualifying credits",
                       key=key)] if credit > 0 else []
    unit = _unit_in(rule, default_unit)
    factor = tier_multiplier if rule.tier_multiplier else Decimal(1)
    if isinstance(action, Stepped):
        quantity = number(read(subject, action.per))
        if quantity is None or quantity <= 0:
            return []
        return [Firing(rule.code, rule.name, "stepped", int(quantity), unit, rule.recipient,
                       {action.per: _plain(quantity)}, f"{_fmt(quantity)} units on the {action.period} volume ladder",
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
        if not all(p(line_subject) for p in compiled_rule.line_when):
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
    return reason if factor == 1 else f"{reason} × {_fmt(factor)} (tier)"


def _award(rule: Rule, raw: Decimal, basis: int | None, inputs: dict[str, Any], reason: str, unit: str, key: Any,
           line: int | None) -> list[Firing]:
    rounding = getattr(rule.action, "rounding", Rounding.DOWN)
    amount = rounded(raw, rounding)
    if amount <= 0:
        return []
    return [Firing(rule.code, rule.name, "award", amount, unit, rule.recipient, inputs, reason, basis, key, line,
                   rounding=rounding)]
