"""Pure evaluation of a compiled rule set against one event: which rules fire and what they ask for.

No I/O and no state: caps, stepped counters and pending timing need the database (or, in a
backtest, an in-memory stand-in), so they are settled afterwards by :mod:`allegiance.rules.settle`.

Evaluating a hundred rules per event in a few microseconds (issue 4; design in docs/rules.md,
"Evaluation speed") rests on doing per rule-set version what does not depend on the event:

- conditions are compiled once into closures (:mod:`allegiance.rules.conditions`);
- a per-trigger :class:`~allegiance.rules.index.TriggerIndex` hands back only the rules that can
  fire, equality conditions and validity windows already decided by look-ups;
- each rule's action is compiled into a ``fire`` closure (:mod:`allegiance.rules.actions`) with
  its constants (unit, texts, the exact integer ratio of a percentage) prepared; the common case —
  integer amounts and quantities, no tier factor — is computed in integers, anything else takes
  the general path (``actions._fire``), which is the original arithmetic in ``Decimal``;
- line rules with a ``line.x eq v`` condition visit only the lines whose ``x`` is ``v``, the lines
  grouped once per event and field for all rules.

Results are identical to the straightforward algorithm (every rule, every condition, every line,
all in ``Decimal``): ``tests/rules/test_evaluate_index.py`` compares the two on random rule sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from allegiance.rules.actions import (
    EXACT_BASE,
    EXACT_RATIO_DIGITS,
    Fire,
    Firing,
    LineGroups,
    compile_fire,
    fmt_number,
    grouped_lines,
    rounded,
    stepped_amount,
)
from allegiance.rules.conditions import Predicate, compile_condition
from allegiance.rules.fields import MISSING, Subject, number, parts_of, read, read_parts
from allegiance.rules.index import Entry, TriggerIndex, equality_position
from allegiance.rules.model import AWARDING, Cap, Condition, Contest, Multiplier, Rounding, Rule, RuleSet

__all__ = ["MISSING", "CompiledRule", "CompiledRuleSet", "Firing", "Subject", "caps_of", "compile_condition",
           "compile_rule_set", "contest_entries", "evaluate", "number", "read", "read_parts", "rounded",
           "stepped_amount"]

LineTest = tuple[tuple[str, tuple[str, ...]], tuple[str, ...], Any]  # ((lines path, field), lines path split, value)



@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    when: tuple[Predicate, ...]
    line_when: tuple[Predicate, ...]
    caps: tuple[Cap, ...]
    unit_caps: dict[str | None, tuple[tuple[Cap, str], ...]] = field(default_factory=dict, compare=False, repr=False)

    def caps_for(self, unit: str | None) -> tuple[tuple[Cap, str], ...]:
        """The caps that limit an award in ``unit``, each with its counter name — asked for every
        award settled, so kept per unit (filling the cache twice from two threads is harmless)."""
        found = self.unit_caps.get(unit)
        if found is None:
            found = self.unit_caps[unit] = tuple((cap, f"cap:{cap.code}") for cap in self.caps
                                                 if cap.unit is None or cap.unit == unit)
        return found


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
        fire = compile_fire(rule, compiled_rule.line_when, line_key)
        step = _Step(rule.code, rule.group or None, rule.exclusive, rest, fire, multiplier, lines)
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
                groups = line_groups[lines[0]] = grouped_lines(items, lines[0][1]) if isinstance(items, list) else {}
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
                factor, f" × {fmt_number(factor)}", len(factor.as_tuple().digits) <= EXACT_RATIO_DIGITS,
                *factor.as_integer_ratio())
        if found is None:
            continue
        factor, suffix, short, num, den = found
        fields = firing.__dict__
        fields["reason"] = firing.reason + suffix
        if kind == "stepped":
            fields["multiplier"] = firing.multiplier * factor
        elif short and firing.amount < EXACT_BASE:
            amount = firing.amount
            fields["amount"] = amount * num // den if firing.rounding is Rounding.DOWN else \
                (2 * amount * num + den) // (2 * den)
        else:
            fields["amount"] = rounded(Decimal(firing.amount) * factor, firing.rounding)
    return firings

