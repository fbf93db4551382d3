"""Pure evaluation of a compiled rule set against one event: which rules fire and what they ask for.

No I/O and no state: caps, stepped counters and pending timing need the database (or, in a
backtest, an in-memory stand-in), so they are settled afterwards by :mod:`allegiance.rules.settle`.
Conditions are compiled once per rule-set version into closures, which is what makes evaluating
a hundred rules per event cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

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

MISSING = object()
Subject = Mapping[str, Any]  # {"payload":…, "organization":…, "participant":…, "event":…, "line":…}
Predicate = Callable[[Subject], bool]


def read(subject: Subject, path: str) -> Any:
    """The value at a dotted path, or ``MISSING``."""
    return read_parts(subject, _parts(path))


_PARTS: dict[str, tuple[str, ...]] = {}


def _parts(path: str) -> tuple[str, ...]:
    found = _PARTS.get(path)
    if found is None:
        if len(_PARTS) > 10_000:
            _PARTS.clear()
        found = _PARTS[path] = tuple(path.split("."))
    return found


def read_parts(subject: Subject, parts: tuple[str, ...]) -> Any:
    """``read`` with the path already split (the hot path: plain dicts checked without ABCs)."""
    current: Any = subject
    for part in parts:
        if (type(current) is dict or isinstance(current, Mapping)) and part in current:
            current = current[part]
            continue
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


def _ordered(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Comparable pair: numbers as Decimals, else two strings (ISO dates compare as text)."""
    a, b = number(left), number(right)
    if a is not None and b is not None:
        return a, b
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


def compile_condition(condition: Condition) -> Predicate:
    """A predicate for one condition; the common shapes (eq / in / ne / not_in on any field but
    ``participant.role``) get a closure that reads the field once and compares, nothing else."""
    path, op, expected = condition.field, condition.op, condition.value
    parts = _parts(path)
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
    return _general_condition(path, op, expected)


def _general_condition(path: str, op: Op, expected: Any) -> Predicate:

    def values(subject: Subject) -> list[Any]:
        """A participant may hold several roles: a condition on ``participant.role`` matches any."""
        value = read(subject, path)
        if path == "participant.role":
            roles = read(subject, "participant.roles")
            if isinstance(roles, list) and roles:
                return roles
        return [value]

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

    return lambda subject: any(compare(v) for v in values(subject))


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


@dataclass
class CompiledRuleSet:
    version: int
    rule_set: RuleSet
    by_trigger: dict[str, list[CompiledRule]]
    release_types: frozenset[str]  # event types that release pending awards
    contests: dict[str, list[CompiledContest]] = field(default_factory=dict)  # event type -> contests it feeds
    by_code: dict[str, CompiledRule] = field(default_factory=dict, repr=False)
    indexes: dict[str, TriggerIndex] = field(default_factory=dict, repr=False)
    line_keys: dict[str, tuple[tuple[str, ...], Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_code = {c.rule.code: c for rules in self.by_trigger.values() for c in rules}
        self.indexes = {trigger: index for trigger, rules in self.by_trigger.items()
                        if (index := TriggerIndex.of(rules)).by_path}
        for compiled_rule in self.by_code.values():
            key = _equality_key(c for c in _line_conditions(compiled_rule.rule))
            if key is not None:
                self.line_keys[compiled_rule.rule.code] = (key[0][1:], key[1])  # the path inside the line

    def rules_for(self, event_type: str) -> list[CompiledRule]:
        return self.by_trigger.get(event_type, [])

    def compiled(self, code: str) -> CompiledRule | None:
        """The enabled rule ``code`` (a dict look-up: called once per firing)."""
        return self.by_code.get(code)


def _line_conditions(rule: Rule) -> list[Condition]:
    return [c for c in rule.conditions if c.field.startswith("line.")] + (rule.lines.conditions if rule.lines else [])


def _equality_key(conditions: Any) -> tuple[tuple[str, ...], Any] | None:
    """The first ``eq`` condition that a dictionary look-up can decide (not ``participant.role``,
    which matches any of a person's roles; a hashable value)."""
    for condition in conditions:
        if condition.op is Op.EQ and condition.field != "participant.role":
            try:
                hash(condition.value)
            except TypeError:
                continue
            return _parts(condition.field), condition.value
    return None


@dataclass(frozen=True)
class TriggerIndex:
    """Which rules of one trigger can possibly fire, found by dictionary look-ups instead of testing
    every rule: a rule with ``field eq value`` is filed under that field and value (it cannot fire
    for any other value, as conditions are and-ed); the rest are always candidates. This is what
    keeps a hundred rules per event cheap when most of them are about one country, segment, brand…"""

    always: tuple[int, ...]
    by_path: dict[tuple[str, ...], dict[Any, tuple[int, ...]]]

    @classmethod
    def of(cls, rules: Sequence[CompiledRule]) -> TriggerIndex:
        always: list[int] = []
        by_path: dict[tuple[str, ...], dict[Any, list[int]]] = {}
        for position, compiled_rule in enumerate(rules):
            conditions = [c for c in compiled_rule.rule.conditions if not c.field.startswith("line.")]
            key = _equality_key(conditions)
            if key is None:
                always.append(position)
            else:
                by_path.setdefault(key[0], {}).setdefault(key[1], []).append(position)
        return cls(tuple(always), {path: {value: tuple(found) for value, found in table.items()}
                                   for path, table in by_path.items()})

    def candidates(self, rules: list[CompiledRule], subject: Subject) -> list[CompiledRule]:
        positions = list(self.always)
        for parts, table in self.by_path.items():
            value = read_parts(subject, parts)
            try:
                found = table.get(value)
            except TypeError:  # an unhashable value (a list, an object) equals no scalar
                found = None
            if found:
                positions.extend(found)
        positions.sort()
        return [rules[position] for position in positions]


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
        per_line = [c for c in rule.conditions if c.field.startswith("line.")]
        per_line += rule.lines.conditions if rule.lines else []
        by_trigger.setdefault(rule.trigger, []).append(CompiledRule(
            rule, tuple(compile_condition(c) for c in rule.conditions if not c.field.startswith("line.")),
            tuple(compile_condition(c) for c in per_line), caps_of(rule_set, rule)))
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
    ``fired`` (if given) collects the code of every rule that fired, multipliers included."""
    firings: list[Firing] = []
    multipliers: list[Multiplier] = []
    fired_groups: set[str] = set()
    rules = compiled.rules_for(event_type)
    index = compiled.indexes.get(event_type)
    if index is not None:
        rules = index.candidates(rules, subject)
    line_cache: dict[tuple[str, tuple[str, ...]], dict[Any, list[int]]] = {}
    for compiled_rule in rules:
        rule = compiled_rule.rule
        if rule.group and rule.group in fired_groups:
            continue
        if (rule.valid_from and occurred_at < rule.valid_from) or (rule.valid_to and occurred_at >= rule.valid_to):
            continue
        passed = True
        for predicate in compiled_rule.when:
            if not predicate(subject):
                passed = False
                break
        if not passed:
            continue
        produced = _fire(compiled_rule, subject, default_unit, tier_multiplier,
                         compiled.line_keys.get(rule.code), line_cache)
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
        return _replace(firing, multiplier=firing.multiplier * factor, reason=reason)
    return _replace(firing, amount=rounded(Decimal(firing.amount) * factor, firing.rounding), reason=reason)


def _replace(firing: Firing, **changes: Any) -> Firing:
    from dataclasses import replace

    return replace(firing, **changes)


def _lines_matching(items: list[Any], path: str, key: tuple[tuple[str, ...], Any] | None,
                    cache: dict[tuple[str, tuple[str, ...]], dict[Any, list[int]]]) -> Iterable[int]:
    """Indexes of the line items a rule may fire on: all, or — when the rule has a ``line.x eq v``
    condition — those whose ``x`` is ``v``, grouped once per event and line field for every rule."""
    if key is None:
        return range(len(items))
    parts, value = key
    groups = cache.get((path, parts))
    if groups is None:
        groups = {}
        for position, item in enumerate(items):
            found = read_parts(item, parts) if isinstance(item, Mapping) else MISSING
            try:
                groups.setdefault(found, []).append(position)
            except TypeError:
                continue  # unhashable: equals no scalar condition value
        cache[(path, parts)] = groups
    return groups.get(value, ())


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
        raw, basis, inputs, reason = _base_award(rule, line_subject, default_unit)
        firings.extend(_award(rule, raw * factor, basis, {**inputs, "line": index}, _tiered(reason, factor), unit,
                              key, index))
    return firings


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
