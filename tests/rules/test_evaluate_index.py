"""The optimized ``evaluate()`` (trigger index, decided equalities, validity epochs, candidate cache,
compiled actions with integer fast paths, grouped line items) gives exactly what the straightforward
algorithm gives — same firings, same fields, same types, same order, same ``fired`` list — for
random rule sets and events (issue 4). The oracle is ``reference_evaluate.py``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allegiance.rules import index as rule_index
from allegiance.rules.actions import new_firing
from allegiance.rules.evaluate import Firing, compile_rule_set, evaluate
from allegiance.rules.model import Recipient, Rounding, RuleSet
from tests.rules.reference_evaluate import reference_evaluate

START = datetime(2026, 1, 1, tzinfo=UTC)
TRIGGERS = ("order.placed", "order.returned")
DECIMALS = ("1", "0.5", "2.5", "1.5", "0.333", "12.3456789012345", "1000", "0.01")
NUMBERS = (0, 1, 7, 1234, 50_000, 99_999, -3, 10**17, 2000000000478138489041097, 12.5, "1200", "abc", True, None,
           Decimal("3.5"))
# The values each field takes in events; conditions draw from the same pools, so they hold often
# (and sometimes meet a value of another type: 1 vs True vs 1.0, a list, a dict, None).
VALUES: dict[str, tuple[Any, ...]] = {
    "payload.channel": ("online", "phone", "store", 1, ["online"]),
    "payload.amount_minor": NUMBERS,
    "payload.quantity": NUMBERS,
    "payload.brand": ("b1", "b2", "b3", ["b1"], {"b": 1}),
    "payload.tags": (["b1", "x"], "online-b1", [], 5),
    "organization.country": ("DE", "FR", "US", None),
    "organization.segment": ("x", "smb", 1, 1.0, True),
    "organization.kind": ("owner", "x"),
    "organization.attributes.size": (100, "DE", 1),
    "participant.role": ("owner", "rep", "x"),
    "event.type": TRIGGERS,
    "payload.missing": ("x",),
    "line.category": ("a", "b", "x", 1, True, ["a"]),
    "line.quantity": NUMBERS,
    "line.amount_minor": NUMBERS,
    "line.brand": ("b1", "b2"),
}
FIELDS = tuple(f for f in VALUES if not f.startswith("line."))
LINE_FIELDS = tuple(f for f in VALUES if f.startswith("line."))
# a `lines` condition may also name an event field (which says nothing about the line)
IN_LINES = (*LINE_FIELDS, "payload.channel", "payload.channel", "organization.country")
SCALARS = ("online", "DE", "b1", "owner", "x", 1, 0, 100, 1.0, True, -5)


@st.composite
def conditions(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, Any]:
    field = draw(st.sampled_from(fields))
    pool = [v for v in VALUES[field] if v is not None] + [draw(st.sampled_from(SCALARS))]
    op = draw(st.sampled_from(["eq", "eq", "eq", "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists",
                               "contains"]))
    if op in ("in", "not_in"):
        value: Any = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    elif op in ("gt", "gte", "lt", "lte"):
        value = draw(st.sampled_from([0, 50, 1000, 50_000, "1200", "2026-01-05", 2.5]))
    elif op == "exists":
        value = draw(st.sampled_from([True, False, None]))
    elif op == "contains":
        value = draw(st.sampled_from(["b1", "on", "x"]))  # a string: `5 in "abc"` would raise in both
    else:
        value = draw(st.sampled_from(pool))
    return {"field": field, "op": op, "value": value}


@st.composite
def actions(draw: st.DrawFn, lines: bool) -> dict[str, Any]:
    kinds = ["fixed", "percent", "per_unit"] + ([] if lines else ["stepped", "multiplier", "tier_credit", "benefit",
                                                                  "clawback"])
    kind = draw(st.sampled_from(kinds))
    unit = draw(st.sampled_from([None, None, "PTS", "USD"]))
    rounding = draw(st.sampled_from(["down", "half_up"]))
    base = "line." if lines and draw(st.booleans()) else "payload."
    if kind == "fixed":
        return {"kind": kind, "amount": draw(st.sampled_from([1, 25, 1000, 10**20])), "unit": unit,
                "rounding": rounding}
    if kind == "percent":
        action = {"kind": kind, "percent": draw(st.sampled_from(DECIMALS)), "of": base + "amount_minor",
                  "unit": unit, "rounding": rounding}
        if draw(st.booleans()):
            action["rate"] = draw(st.sampled_from(["1", "0.01", "3", "0.0000001234567"]))
        return action
    if kind == "per_unit":
        return {"kind": kind, "amount": draw(st.sampled_from([1, 5, 1500])), "per": base + "quantity", "unit": unit,
                "rounding": rounding}
    if kind == "stepped":
        return {"kind": kind, "per": "payload.quantity", "unit": unit,
                "steps": [{"from_quantity": 0, "amount": 1}, {"from_quantity": 10, "amount": 2}]}
    if kind == "multiplier":
        return {"kind": kind, "factor": draw(st.sampled_from(["1.5", "2", "0.5", "1", "0.333"])),
                "units": draw(st.sampled_from([[], ["PTS"], ["USD"]]))}
    if kind == "tier_credit":
        if draw(st.booleans()):
            return {"kind": kind, "amount": 10}
        return {"kind": kind, "percent": draw(st.sampled_from(DECIMALS)), "of": "payload.amount_minor"}
    if kind == "benefit":
        return {"kind": kind, "code": "lounge", "description": "Lounge access"}
    return {"kind": kind, "rules": ["r0"], "key": "payload.order_id",
            "amount": draw(st.sampled_from(["payload.amount_minor", None]))}


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    rules = []
    for number in range(draw(st.integers(1, 14))):
        lines = draw(st.integers(0, 2)) == 0
        rule: dict[str, Any] = {"code": f"r{number}", "name": f"Rule {number}",
                                "trigger": draw(st.sampled_from(TRIGGERS)), "action": draw(actions(lines)),
                                "conditions": draw(st.lists(conditions(FIELDS), max_size=1 if lines else 2))}
        if lines:
            rule["lines"] = {"path": "payload.lines",
                             "conditions": draw(st.lists(conditions(IN_LINES), max_size=1))}
            if draw(st.booleans()):
                rule["conditions"].append(draw(conditions(LINE_FIELDS)))
        if draw(st.booleans()):
            rule["priority"] = draw(st.integers(0, 3))
        if draw(st.integers(0, 2)) == 0:
            rule["group"] = draw(st.sampled_from(["g1", "g2"]))
        if draw(st.integers(0, 5)) == 0:
            rule["exclusive"] = True
        if draw(st.integers(0, 2)) == 0:
            begin = draw(st.integers(-5, 20))
            if draw(st.booleans()):
                rule["valid_from"] = (START + timedelta(days=begin)).isoformat()
            if draw(st.booleans()):
                zone = draw(st.sampled_from(["+00:00", "+02:00"]))
                rule["valid_to"] = (START + timedelta(days=begin + draw(st.integers(1, 10)))).isoformat()[:-6] + zone
        if draw(st.booleans()):
            rule["key"] = "payload.order_id"
        if draw(st.integers(0, 4)) == 0:
            rule["tier_multiplier"] = False
        if draw(st.integers(0, 6)) == 0:
            rule["enabled"] = False
        if draw(st.integers(0, 5)) == 0:
            rule["recipient"] = draw(st.sampled_from(["organization", "participant"]))
        rules.append(rule)
    awarding = [r["code"] for r in rules if r["action"]["kind"] in ("fixed", "percent", "per_unit", "stepped")]
    caps = []
    if awarding and draw(st.booleans()):
        caps.append({"code": "monthly", "scope": "participant", "period": "month", "max_amount": 500,
                     "rules": awarding[:2]})
    return {"rules": rules, "caps": caps}


@st.composite
def events(draw: st.DrawFn) -> tuple[str, datetime, dict[str, Any]]:
    subject: dict[str, Any] = {"payload": {}, "organization": {"id": 1}, "participant": {}}
    for path in FIELDS:
        root, *middle, name = path.split(".")
        if root != "event" and draw(st.integers(0, 3)) > 0:
            target = subject[root]
            for part in middle:
                target = target.setdefault(part, {})
            target[name] = draw(st.sampled_from(VALUES[path]))
    if draw(st.integers(0, 3)) == 0:
        subject["participant"]["roles"] = draw(st.lists(st.sampled_from(VALUES["participant.role"]), max_size=2))
    if draw(st.integers(0, 4)) > 0:
        line = st.fixed_dictionaries({"category": st.sampled_from(VALUES["line.category"])},
                                     optional={f.removeprefix("line."): st.sampled_from(VALUES[f])
                                               for f in LINE_FIELDS if f != "line.category"})
        subject["payload"]["lines"] = draw(st.lists(st.one_of(line, line, line, st.just("not a line")), max_size=6)
                                           | st.just("not a list"))
    event_type = draw(st.sampled_from(TRIGGERS))
    at = START + timedelta(hours=draw(st.integers(-48, 24 * 40)))
    subject["event"] = {"type": event_type, "occurred_at": at.isoformat(), "id": 1}
    return event_type, at, subject


TIERS = st.sampled_from([Decimal(1), Decimal(1), Decimal("1.0"), Decimal("1.5"), Decimal("0.7")])


def _same(rule_set: RuleSet, compiled: Any, event: tuple[str, datetime, dict[str, Any]], tier: Decimal) -> None:
    event_type, at, subject = event
    fired: list[str] = []
    expected_fired: list[str] = []
    got = evaluate(compiled, event_type, at, subject, default_unit="PTS", tier_multiplier=tier, fired=fired)
    expected = reference_evaluate(rule_set, event_type, at, subject, default_unit="PTS", tier_multiplier=tier,
                                  fired=expected_fired)
    assert repr(got) == repr(expected)  # the repr shows every field with its type (5 vs Decimal('5'))
    assert got == expected
    assert fired == expected_fired


@given(document=rule_sets(), stream=st.lists(st.tuples(events(), TIERS), min_size=1, max_size=12))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_optimized_evaluation_equals_the_straightforward_one(document: dict[str, Any],
                                                             stream: list[tuple[Any, Decimal]]) -> None:
    rule_set = RuleSet.model_validate(document)
    compiled = compile_rule_set(rule_set, 1)
    for event, tier in stream + stream:  # twice: the second time from the candidate cache
        _same(rule_set, compiled, event, tier)


@given(document=rule_sets(), stream=st.lists(st.tuples(events(), TIERS), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_cache_that_is_always_full_changes_nothing(document: dict[str, Any], stream: list[tuple[Any, Decimal]],
                                                     ) -> None:
    rule_set = RuleSet.model_validate(document)
    compiled = compile_rule_set(rule_set, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rule_index, "CACHE_LIMIT", 1)
        for event, tier in stream + stream:
            _same(rule_set, compiled, event, tier)


def test_the_hundred_rule_benchmark_set_evaluates_as_the_reference() -> None:
    """The set of bench/bench_rules.py on synthetic events, with and without a tier factor."""
    from bench.bench_rules import _subjects, hundred_rules

    rule_set = RuleSet.model_validate(hundred_rules())
    compiled = compile_rule_set(rule_set, 1)
    subjects = _subjects(1500)
    fired = 0
    for tier in (Decimal(1), Decimal("1.25")):
        for event in subjects:
            _same(rule_set, compiled, event, tier)
            fired += bool(evaluate(compiled, event[0], event[1], event[2], default_unit="PTS"))
    assert fired > 500  # the comparison is about rules that fire


def test_a_line_condition_on_an_event_field_does_not_group_the_lines() -> None:
    """``lines: {conditions: [payload.channel eq online]}`` is about the order, not the line."""
    rule_set = RuleSet.model_validate({"rules": [{
        "code": "r", "name": "R", "trigger": "order.placed",
        "lines": {"conditions": [{"field": "payload.channel", "op": "eq", "value": "online"}]},
        "action": {"kind": "per_unit", "amount": 2, "per": "line.quantity"}}]})
    subject = {"payload": {"channel": "online", "lines": [{"quantity": 3}, {"quantity": 4}]}}
    got = evaluate(compile_rule_set(rule_set, 1), "order.placed", START, subject, default_unit="PTS")
    assert [(f.amount, f.line) for f in got] == [(6, 0), (8, 1)]


def test_the_fast_firing_constructor_builds_the_same_frozen_firing() -> None:
    args = ("r", "R", "award", 5, "PTS", Recipient.PARTICIPANT, {"payload.x": 1}, "why", 5, "O1", 2, Decimal("1.5"),
            Rounding.HALF_UP)
    fast, slow = new_firing(*args), Firing(*args)
    assert fast == slow and repr(fast) == repr(slow) and list(vars(fast)) == list(vars(slow))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.amount = 6  # type: ignore[misc]


@pytest.mark.parametrize("rounding", ["down", "half_up"])
def test_a_base_beyond_decimal_precision_is_computed_as_decimal_computes_it(rounding: str) -> None:
    """0.5 % at 0.0000001234567 of this base is an integer minus 5e-16 exactly; Decimal's 28 digits
    round it up to the integer. The integer fast path must leave such a base to Decimal."""
    base = 2000000000478138489041097
    rule_set = RuleSet.model_validate({"rules": [{
        "code": "r", "name": "R", "trigger": "order.placed",
        "action": {"kind": "percent", "percent": "0.5", "rate": "0.0000001234567", "rounding": rounding}}]})
    event = ("order.placed", START, {"payload": {"amount_minor": base}})
    _same(rule_set, compile_rule_set(rule_set, 1), event, Decimal(1))
    [firing] = evaluate(compile_rule_set(rule_set, 1), *event, default_unit="PTS")
    assert firing.amount == 1234567000295147 != base * 5 * 1234567 // (1000 * 10**13)
