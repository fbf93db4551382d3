"""One row of a bulk file → an ``IncomingEvent``, or a ``RowError`` naming the column and reason.

Pure and cheap on purpose: the importer calls this for every row of files with millions of rows,
so it builds no pydantic model and compiles each event type's schema once. The rules mirror the
API's ``EventIn`` (same lengths, same "time zone offset required"), so a row the importer accepts
is one the API would accept, and the resulting ``IncomingEvent`` has the same fingerprint.

Two steps, because the importer checks the database in between: ``parse_row`` checks the shape
(cheap, needed to know the source id), and ``PayloadChecker.check`` the type and payload schema,
which a row that turns out to be a duplicate never needs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from allegiance.events.model import IncomingEvent
from allegiance.events.schemas import InvalidPayload, validate_payload, validator_for

COLUMNS = frozenset({
    "source_id", "type", "occurred_at", "organization_id", "organization_external_id",
    "participant_id", "participant_external_id", "payload",
})
NUL_ESCAPE = "\\u0000"  # PostgreSQL cannot store U+0000 in text or JSONB


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was refused: ``field`` is the column (or JSON path inside ``payload``)."""

    field: str
    reason: str


class _Bad(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.error = RowError(field, reason)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN and Infinity (not JSON; PostgreSQL's JSONB refuses them too)."""
    return json.loads(text, parse_constant=_reject_constant)


def _text(raw: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise _Bad(name, "is required")
        return None
    if not isinstance(value, str):
        raise _Bad(name, "must be a string")
    if len(value) > limit:
        raise _Bad(name, f"must be at most {limit} characters")
    if "\x00" in value:
        raise _Bad(name, "must not contain a NUL character")
    return value


def _positive_id(raw: Mapping[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value >= 2**63:
        raise _Bad(name, "must be a positive integer")
    return value


def _occurred_at(raw: Mapping[str, Any]) -> datetime:
    value = raw.get("occurred_at")
    if value is None or value == "":
        raise _Bad("occurred_at", "is required")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad("occurred_at", f"{value[:40]!r} is not an ISO-8601 date-time") from None
    if not isinstance(value, datetime):
        raise _Bad("occurred_at", "must be an ISO-8601 date-time with a time zone offset")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Bad("occurred_at", "must include a time zone offset")
    return value


def _payload(raw: Mapping[str, Any]) -> dict[str, Any]:
    value = raw.get("payload")
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        if NUL_ESCAPE in value:
            raise _Bad("payload", "must not contain a NUL character (\\u0000)")
        try:
            value = loads_strict(value)
        except ValueError as exc:
            raise _Bad("payload", f"is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _Bad("payload", "must be a JSON object")
    return value


def parse_row(raw: Mapping[str, Any]) -> IncomingEvent | RowError:
    """Check a row's shape and build the event; the payload is not yet checked against its schema."""
    try:
        if not COLUMNS.issuperset(raw):
            unknown = sorted(str(k) for k in raw if k not in COLUMNS)
            if unknown == ["None"]:  # csv puts extra fields under the key None
                raise _Bad("row", "has more fields than the header")
            raise _Bad(unknown[0], f"is not a known column (expected some of {', '.join(sorted(COLUMNS))})")
        return IncomingEvent(
            source_id=_text(raw, "source_id", 200, required=True),  # type: ignore[arg-type]
            type=_text(raw, "type", 100, required=True),  # type: ignore[arg-type]
            occurred_at=_occurred_at(raw),
            payload=_payload(raw),
            organization_id=_positive_id(raw, "organization_id"),
            organization_external_id=_text(raw, "organization_external_id", 100),
            participant_id=_positive_id(raw, "participant_id"),
            participant_external_id=_text(raw, "participant_external_id", 100),
        )
    except _Bad as bad:
        return bad.error


class PayloadChecker:
    """The program's declared event types, each schema compiled once (fastjsonschema)."""

    def __init__(self, schemas: Mapping[str, dict[str, Any]]) -> None:
        self.schemas = dict(schemas)
        self._validators: dict[str, Callable[[Any], Any]] = {
            name: validator_for(schema) for name, schema in self.schemas.items()}

    def check(self, event: IncomingEvent) -> RowError | None:
        validate = self._validators.get(event.type)
        if validate is None:
            return RowError("type", f"event type {event.type!r} is not declared in this program")
        try:
            validate(event.payload)
        except Exception:
            # Slow path, only for bad rows: the shared helper names the JSON path and the rule.
            try:
                validate_payload(self.schemas[event.type], event.payload)
            except InvalidPayload as exc:
                return RowError(exc.field or "payload", exc.message)
            except Exception as exc:  # a validator failing on odd input is still this row's problem
                return RowError("payload", f"could not be validated: {exc}")
            return RowError("payload", "is invalid")
        return None


def to_event(raw: Mapping[str, Any], checker: PayloadChecker) -> IncomingEvent | RowError:
    """Both steps: shape, then type and payload schema."""
    event = parse_row(raw)
    if isinstance(event, RowError):
        return event
    return checker.check(event) or event
