"""Telling people where they stand: which rules apply to them, what an event must contain to earn,
how much of each cap is left and how far the next step of a volume ladder is ("3 more units to
2 PTS per unit"). Pure: counters are read through the port by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from allegiance.rules.evaluate import CompiledRuleSet, compile_condition
from allegiance.rules.model import AWARDING, Cap, Condition, Stepped
from allegiance.rules.settle import CounterKey, period_key, subject_of

OP_WORDS = {"eq": "=", "ne": "≠", "in": "is one of", "not_in": "is not one of", "gt": ">", "gte": "≥", "lt": "<",
            "lte": "≤", "exists": "is present", "contains": "contains"}


def requirement(condition: Condition) -> str:
    value = "" if condition.op.value == "exists" else f" {condition.value}"
    return f"{condition.field} {OP_WORDS[condition.op.value]}{value}"


@dataclass
class CapStanding:
    code: str
    period: str
    unit: str | None
    max_amount: int | None
    used_amount: int
    max_count: int | None
    used_count: int

    @property
    def remaining_amount(self) -> int | None:
        return None if self.max_amount is None else max(self.max_amount - self.used_amount, 0)


@dataclass
class RuleStanding:
    rule: str
    name: str
    trigger: str
    action: str
    unit: str | None
    requirements: list[str]
    caps: list[CapStanding] = field(default_factory=list)
    next_step: dict[str, Any] | None = None
    message: str = ""


Reader = Callable[[list[CounterKey]], Mapping[CounterKey, tuple[int, int]]]


def standing(compiled: CompiledRuleSet, organization: Mapping[str, Any], participant: Mapping[str, Any] | None,
             at: datetime, default_unit: str, read_counters: Reader) -> list[RuleStanding]:
    """The active earning rules this organization/person can still earn from, with what is left."""
    subject = {"organization": organization, "participant": participant or {}}
    org_id = int(organization["id"])
    person_id = int(participant["id"]) if participant else None
    result = []
    for rules in compiled.by_trigger.values():
        for compiled_rule in rules:
            rule = compiled_rule.rule
            if rule.action.kind not in AWARDING or (rule.valid_to and at >= rule.valid_to):
                continue
            static = [c for c in rule.conditions if c.field.split(".")[0] in ("organization", "participant")]
            if not all(compile_condition(c)(subject) for c in static):
                continue
            unit = getattr(rule.action, "unit", None) or default_unit
            wanted = [c for c in rule.conditions if c not in static]
            if rule.lines:
                wanted += rule.lines.conditions
            row = RuleStanding(rule.code, rule.name, rule.trigger, rule.action.kind, unit,
                               [requirement(c) for c in wanted])
            row.caps = _caps(compiled_rule.caps, unit, org_id, person_id, at, read_counters)
            if isinstance(rule.action, Stepped):
                row.next_step = _next_step(rule.code, rule.action, org_id, at, read_counters)
            row.message = _message(row)
            result.append(row)
    return result


def _caps(caps: tuple[Cap, ...], unit: str, org_id: int, person_id: int | None, at: datetime,
          read_counters: Reader) -> list[CapStanding]:
    applicable = [c for c in caps if c.unit in (None, unit)]
    keys = {c.code: CounterKey(f"cap:{c.code}", subject_of(c.scope, org_id, person_id), period_key(c.period, at))
            for c in applicable}
    used = read_counters(list(keys.values()))
    return [CapStanding(c.code, keys[c.code].period, c.unit or unit, c.max_amount, used.get(keys[c.code], (0, 0))[0],
                        c.max_count, used.get(keys[c.code], (0, 0))[1]) for c in applicable]


def _next_step(code: str, action: Stepped, org_id: int, at: datetime, read_counters: Reader) -> dict[str, Any]:
    key = CounterKey(f"steps:{code}", f"o:{org_id}", period_key(action.period, at))
    volume = read_counters([key]).get(key, (0, 0))[0]
    current = [s for s in action.steps if s.from_quantity <= volume][-1]
    upcoming = next((s for s in action.steps if s.from_quantity > volume), None)
    if upcoming is None:
        return {"volume": volume, "rate": current.amount, "more_units": None, "next_rate": None}
    return {"volume": volume, "rate": current.amount, "more_units": upcoming.from_quantity - volume,
            "next_rate": upcoming.amount}


def _message(row: RuleStanding) -> str:
    if row.next_step and row.next_step["more_units"] is not None:
        return (f"{row.next_step['more_units']:,} more units to {row.next_step['next_rate']:,} {row.unit} per unit "
                f"on {row.name}")
    for cap in row.caps:
        if cap.max_amount is not None:
            left = cap.remaining_amount
            if left == 0:
                return f"{row.name}: the {cap.code} cap is reached for {cap.period}"
            return f"{row.name}: {left:,} {cap.unit} left under the {cap.code} cap for {cap.period}"
        if cap.max_count is not None:
            return f"{row.name}: {max(cap.max_count - cap.used_count, 0)} awards left for {cap.period}"
    if row.requirements:
        return f"{row.name}: earn on {row.trigger} when " + " and ".join(row.requirements)
    return f"{row.name}: earn on every {row.trigger}"
