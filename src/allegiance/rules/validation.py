"""A rule-set document checked for shape and against its program: errors name the field path
(``rules[2].action.percent``) and the reason, as a 422 problem or a CLI line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from allegiance.kernel.errors import ValidationFailed
from allegiance.programs.model import ProgramSettings
from allegiance.rules.model import Fixed, RuleSet, parse_rule_set

KINDS = ("fixed", "percent", "per_unit", "stepped", "multiplier", "tier_credit", "benefit", "clawback")
PRIZE_TAGS = ("fixed", "benefit")


class RuleSetInvalid(ValidationFailed):
    code = "rule_set_invalid"


class NotActivatable(ValidationFailed):
    code = "rule_set_not_activatable"


def error_path(loc: Sequence[Any]) -> str:
    """pydantic's location as ``rules[2].action.percent`` (the union's tag step dropped)."""
    out = ""
    previous = None
    for part in loc:
        if (previous == "action" and part in KINDS) or (isinstance(previous, int) and part in PRIZE_TAGS
                                                         and out.endswith(f"prizes[{previous}]")):
            previous = part
            continue
        text = str(part)
        out += f"[{text}]" if isinstance(part, int) else (f".{text}" if out else text)
        previous = part
    return out or "document"


def validated(document: Any, settings: ProgramSettings, declared_types: set[str] | None) -> RuleSet:
    """A rule-set document checked for shape and against the program (units, roles, event types)."""
    if not isinstance(document, dict):
        raise RuleSetInvalid("a rule set is an object with `rules` and `caps`", field="document")
    try:
        rule_set = parse_rule_set(document)
    except ValidationError as exc:
        errors = [{"field": error_path(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise RuleSetInvalid(first["reason"], field=first["field"], errors=errors) from None
    units = {u.code for u in settings.units}
    for index, rule in enumerate(rule_set.rules):
        where = f"rules[{index}]"
        unit = getattr(rule.action, "unit", None)
        if unit is not None and unit not in units:
            raise RuleSetInvalid(f"unit {unit!r} is not one of the program's units {sorted(units)}",
                                 field=f"{where}.action.unit")
        if declared_types is not None and rule.trigger not in declared_types:
            raise RuleSetInvalid(f"event type {rule.trigger!r} is not declared in this program",
                                 field=f"{where}.trigger")
        if rule.timing.until_event and declared_types is not None and rule.timing.until_event not in declared_types:
            raise RuleSetInvalid(f"event type {rule.timing.until_event!r} is not declared in this program",
                                 field=f"{where}.timing.until_event")
        if rule.timing.until_event and rule.key and rule.key != rule.timing.key:
            raise RuleSetInvalid("key and timing.key must name the same field", field=f"{where}.timing.key")
        roles = settings.role_codes()
        for c_index, condition in enumerate(rule.conditions):
            if condition.field == "participant.role":
                wanted = condition.value if isinstance(condition.value, list) else [condition.value]
                unknown = [r for r in wanted if r not in roles]
                if unknown:
                    raise RuleSetInvalid(f"unknown roles {unknown}; the program's roles are {sorted(roles)}",
                                         field=f"{where}.conditions[{c_index}].value")
    for index, contest in enumerate(rule_set.contests):
        unknown = [t for t in contest.measure.event_types if declared_types is not None and t not in declared_types]
        if unknown:
            raise RuleSetInvalid(f"event types {unknown} are not declared in this program",
                                 field=f"contests[{index}].measure.event_types")
        for p_index, prize in enumerate(contest.prizes):
            if isinstance(prize, Fixed) and prize.unit is not None and prize.unit not in units:
                raise RuleSetInvalid(f"unit {prize.unit!r} is not one of the program's units",
                                     field=f"contests[{index}].prizes[{p_index}].unit")
    for index, cap in enumerate(rule_set.caps):
        if cap.unit is not None and cap.unit not in units:
            raise RuleSetInvalid(f"unit {cap.unit!r} is not one of the program's units", field=f"caps[{index}].unit")
    return rule_set
