"""Rule-set documents and backtest reports in words, for the rules pages' tables.

Operators read "order.placed · payload.channel = online → 5 % of payload.amount_minor, EUR" rather
than JSON; these functions only describe, they decide nothing (the engine's model is the truth).
"""

from __future__ import annotations

from typing import Any

from allegiance.rules.model import Op, Rule, RuleSet, parse_rule_set

OPS = {Op.EQ: "=", Op.NE: "≠", Op.IN: "in", Op.NOT_IN: "not in", Op.GT: ">", Op.GTE: "≥", Op.LT: "<", Op.LTE: "≤",
       Op.EXISTS: "exists", Op.CONTAINS: "contains"}


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def condition_text(field: str, op: Op, value: Any) -> str:
    if op is Op.EXISTS:
        return f"{field} exists" if value in (None, True) else f"{field} is missing"
    return f"{field} {OPS[op]} {_value(value)}"


def action_text(rule: Rule, default_unit: str) -> str:
    action = rule.action
    unit = getattr(action, "unit", None) or default_unit
    kind = action.kind
    if kind == "fixed":
        return f"{action.amount} {unit}"  # type: ignore[union-attr]
    if kind == "percent":
        rate = f" at {action.rate} {unit} per unit" if action.rate != 1 else ""  # type: ignore[union-attr]
        return f"{action.percent} % of {action.of} in {unit}{rate}"  # type: ignore[union-attr]
    if kind == "per_unit":
        return f"{action.amount} {unit} per {action.per}"  # type: ignore[union-attr]
    if kind == "stepped":
        steps = "; ".join(f"from {s.from_quantity}: {s.amount}" for s in action.steps)  # type: ignore[union-attr]
        return f"{unit} per {action.per}, stepped by {action.period} volume ({steps})"  # type: ignore[union-attr]
    if kind == "multiplier":
        units = ", ".join(action.units) or "every unit"  # type: ignore[union-attr]
        return f"× {action.factor} on {units}"  # type: ignore[union-attr]
    if kind == "tier_credit":
        if action.amount is not None:  # type: ignore[union-attr]
            return f"{action.amount} tier-qualifying credit"  # type: ignore[union-attr]
        return f"{action.percent} % of {action.of} as tier-qualifying credit"  # type: ignore[union-attr]
    if kind == "benefit":
        days = f", valid {action.valid_days} days" if action.valid_days else ""  # type: ignore[union-attr]
        return f"benefit {action.description} × {action.quantity}{days}"  # type: ignore[union-attr]
    if kind == "clawback":
        return f"claws back {', '.join(action.rules)} matched by {action.key}"  # type: ignore[union-attr]
    return str(kind)


def timing_text(rule: Rule) -> str:
    if rule.timing.until_event:
        return f"pending until {rule.timing.until_event}"
    if rule.timing.after_days:
        return f"pending {rule.timing.after_days} days"
    return "immediate"


def rule_rows(rule_set: RuleSet, default_unit: str) -> list[dict[str, Any]]:
    rows = []
    for rule in rule_set.rules:
        conditions = [condition_text(c.field, c.op, c.value) for c in rule.conditions]
        if rule.lines is not None:
            conditions += [f"each line of {rule.lines.path}: " + condition_text(c.field, c.op, c.value)
                           for c in rule.lines.conditions]
        window = " – ".join(d.date().isoformat() if d else "…" for d in (rule.valid_from, rule.valid_to)) \
            if rule.valid_from or rule.valid_to else "always"
        rows.append({
            "code": rule.code, "name": rule.name, "trigger": rule.trigger, "conditions": conditions,
            "action": action_text(rule, default_unit), "kind": rule.action.kind, "recipient": rule.recipient.value,
            "caps": rule.caps, "priority": rule.priority, "group": rule.group, "exclusive": rule.exclusive,
            "window": window, "timing": timing_text(rule), "enabled": rule.enabled,
            "goal": rule.goal.model_dump() if rule.goal else None,
        })
    return rows


def cap_rows(rule_set: RuleSet, default_unit: str) -> list[dict[str, Any]]:
    return [{"code": c.code, "scope": c.scope.value, "period": c.period.value, "unit": c.unit or default_unit,
             "max_amount": c.max_amount, "max_count": c.max_count, "rules": c.rules or ["every awarding rule"]}
            for c in rule_set.caps]


def contest_rows(rule_set: RuleSet) -> list[dict[str, Any]]:
    return [{"code": c.code, "name": c.name, "period": c.period, "top": c.top,
             "measure": f"{c.measure.field or 'count'} of {', '.join(c.measure.event_types)}"}
            for c in rule_set.contests]


def describe(document: dict[str, Any], default_unit: str) -> dict[str, Any]:
    """A stored document as rows; a document that no longer parses is shown as JSON with the reason."""
    try:
        rule_set = parse_rule_set(document)
    except ValueError as exc:
        return {"rules": [], "caps": [], "contests": [], "unreadable": str(exc).splitlines()[0]}
    return {"rules": rule_rows(rule_set, default_unit), "caps": cap_rows(rule_set, default_unit),
            "contests": contest_rows(rule_set), "unreadable": None}


def report_units(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per unit: issued, clawed back, liability, cut by caps, still pending at the end."""
    units = sorted(set(report["issued"]) | set(report["clawed_back"]) | set(report["capped"]) | set(report["pending"]))
    return [{"unit": u, "kind": report["units"].get(u, ""), "issued": report["issued"].get(u, 0),
             "clawed_back": report["clawed_back"].get(u, 0), "liability": report["liability"].get(u, 0),
             "capped": report["capped"].get(u, 0), "pending_count": report["pending"].get(u, {}).get("count", 0),
             "pending_amount": report["pending"].get(u, {}).get("amount", 0)} for u in units]
