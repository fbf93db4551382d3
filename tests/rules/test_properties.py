"""Hypothesis properties of the pure rules: caps are never exceeded, a volume ladder pays what
counting unit by unit would, and stacking follows priority, groups and exclusivity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.rules.evaluate import Firing, compile_rule_set, evaluate, stepped_amount
from allegiance.rules.model import RuleSet
from allegiance.rules.settle import CounterKey, MemoryCounters, period_key, settle

START = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def cap_sets(draw: st.DrawFn) -> dict[str, Any]:
    caps = []
    for index in range(draw(st.integers(1, 3))):
        cap: dict[str, Any] = {"code": f"c{index}", "scope": draw(st.sampled_from(["participant", "organization",
                                                                                   "rule"])),
                               "period": draw(st.sampled_from(["day", "week", "month", "year", "lifetime"]))}
        if draw(st.booleans()):
            cap["max_amount"] = draw(st.integers(1, 500))
        if draw(st.booleans()) or "max_amount" not in cap:
            cap["max_count"] = draw(st.integers(1, 6))
        caps.append(cap)
    return {"rules": [{"code": "r", "name": "R", "trigger": "order.placed",
                       "action": {"kind": "fixed", "amount": 1}}], "caps": caps}


@given(document=cap_sets(),
       awards=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 3), st.integers(0, 3), st.integers(0, 90)),
                       max_size=40))
@settings(max_examples=150, deadline=None)
def test_caps_are_never_exceeded(document: dict[str, Any], awards: list[tuple[int, int, int, int]]) -> None:
    compiled = compile_rule_set(RuleSet.model_validate(document), 1)
    [rule] = compiled.rules_for("order.placed")
    counters = MemoryCounters()
    granted: dict[CounterKey, list[int]] = {}
    for amount, org, person, day in awards:
        at = START + timedelta(days=day)
        participant = person or None
        grant = settle(Firing("r", "R", "award", amount, "PTS"), rule, at, org, participant, counters)
        assert 0 <= grant.amount <= amount and grant.amount + grant.capped == amount
        for cap in rule.caps:
            subject = ("all" if cap.scope.value == "rule" else
                       f"p:{participant}" if cap.scope.value == "participant" and participant else f"o:{org}")
            key = CounterKey(f"cap:{cap.code}", subject, period_key(cap.period, at))
            if grant.amount:
                granted.setdefault(key, []).append(grant.amount)
    caps = {c.code: c for c in rule.caps}
    for key, amounts in granted.items():
        cap = caps[key.name.removeprefix("cap:")]
        if cap.max_amount is not None:
            assert sum(amounts) <= cap.max_amount
        if cap.max_count is not None:
            assert len(amounts) <= cap.max_count


@given(starts=st.lists(st.integers(1, 200), max_size=4, unique=True),
       rates=st.lists(st.integers(1, 9), min_size=5, max_size=5),
       before=st.integers(0, 300), quantity=st.integers(0, 300))
def test_a_volume_ladder_pays_unit_by_unit(starts: list[int], rates: list[int], before: int, quantity: int) -> None:
    steps = list(zip([0, *sorted(starts)], rates, strict=False))

    def rate_of(unit: int) -> int:  # the rate of the n-th unit (1-based)
        return [rate for start, rate in steps if start < unit][-1]

    assert stepped_amount(steps, before, quantity) == sum(rate_of(u) for u in range(before + 1, before + quantity + 1))


@st.composite
def stacks(draw: st.DrawFn) -> dict[str, Any]:
    rules = []
    for index in range(draw(st.integers(1, 8))):
        rule: dict[str, Any] = {"code": f"r{index}", "name": f"R{index}", "trigger": "order.placed",
                                "priority": draw(st.integers(0, 5)), "action": {"kind": "fixed", "amount": index + 1}}
        if draw(st.booleans()):
            rule["group"] = draw(st.sampled_from(["a", "b"]))
        if draw(st.integers(0, 4)) == 0:
            rule["exclusive"] = True
        if draw(st.booleans()):
            rule["conditions"] = [{"field": "payload.amount", "op": "gte", "value": draw(st.integers(0, 100))}]
        rules.append(rule)
    return {"rules": rules}


@given(document=stacks(), amount=st.integers(0, 100))
def test_stacking_follows_priority_groups_and_exclusivity(document: dict[str, Any], amount: int) -> None:
    rule_set = RuleSet.model_validate(document)
    compiled = compile_rule_set(rule_set, 1)
    fired = evaluate(compiled, "order.placed", START, {"payload": {"amount": amount}}, default_unit="PTS")
    by_code = {r.code: r for r in rule_set.rules}
    order = [(by_code[f.rule].priority, f.rule) for f in fired]
    assert order == sorted(order), "rules fire in priority order"
    groups = [by_code[f.rule].group for f in fired if by_code[f.rule].group]
    assert len(groups) == len(set(groups)), "at most one rule per group"
    exclusive = [i for i, f in enumerate(fired) if by_code[f.rule].exclusive]
    assert not exclusive or exclusive[0] == len(fired) - 1, "nothing fires after an exclusive rule"
    # and every rule that could fire did, unless a group or an exclusive rule stopped it
    eligible = [r for r in sorted(rule_set.rules, key=lambda r: (r.priority, r.code))
                if all(amount >= c.value for c in r.conditions)]
    expected, seen_groups = [], set()
    for rule in eligible:
        if rule.group and rule.group in seen_groups:
            continue
        expected.append(rule.code)
        if rule.group:
            seen_groups.add(rule.group)
        if rule.exclusive:
            break
    assert [f.rule for f in fired] == expected


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_period_keys_are_the_calendar_buckets_counters_were_stored_under(at: datetime) -> None:
    """``period_key`` is formatted by hand for speed; its buckets must stay the ones stored counter
    rows already carry (the ``strftime`` forms it replaced)."""
    year, week, _ = at.isocalendar()
    assert period_key("day", at) == at.strftime("%Y-%m-%d")
    assert period_key("week", at) == f"{year}-W{week:02d}"
    assert period_key("month", at) == at.strftime("%Y-%m")
    assert period_key("quarter", at) == f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    assert period_key("year", at) == at.strftime("%Y")
    assert period_key("lifetime", at) == "all"
