"""Reading the fields rules talk about (``payload.amount_minor``, ``organization.country``, ``line.sku``)
out of an event's subject, shared by the evaluator and its index."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

MISSING = object()
Subject = Mapping[str, Any]  # {"payload":…, "organization":…, "participant":…, "event":…, "line":…}


def read(subject: Subject, path: str) -> Any:
    """The value at a dotted path, or ``MISSING``."""
    return read_parts(subject, parts_of(path))


_PARTS: dict[str, tuple[str, ...]] = {}


def parts_of(path: str) -> tuple[str, ...]:
    """``path`` split at its dots, remembered (rules name the same few paths on every event)."""
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
        if type(current) is dict:
            current = current.get(part, MISSING)  # MISSING itself is never stored in a subject
            if current is MISSING:
                return MISSING
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
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
