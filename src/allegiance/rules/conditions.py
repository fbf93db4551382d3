"""Conditions of the rule language compiled into predicates over an event's subject.

A rule set version compiles each condition once; evaluating it per event is then a closure call.
The common shapes (``eq``, ``in``, ``ne``, ``not_in``, integer thresholds) read the field once and
compare, nothing more; every other shape goes through :func:`_comparison`, which is the language's
definition of each operator (``MISSING`` and ``None`` only satisfy ``ne`` / ``not_in``; ordering
compares numbers as Decimals and strings as text, so ISO dates order correctly).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from allegiance.rules.fields import MISSING, Subject, number, parts_of, read, read_parts
from allegiance.rules.model import Condition, Op

__all__ = ["Predicate", "compile_condition"]

Predicate = Callable[[Subject], bool]


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
