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

import hashlib
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


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that refuses NaN and Infinity (not JSON; PostgreSQL's JSONB refuses them too).

    One shared decoder (``json.loads`` with any option builds a new one per call) and its scanner
    directly, falling back to ``decode`` for the exact error or surrounding whitespace: this is
    called once per row of a bulk file."""
    if isinstance(text, bytes):
        text = text.decode()  # UnicodeDecodeError is a ValueError too
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text) and not text[end:].isspace():
        return _DECODER.decode(text)  # raises "Extra data" with its position
    return value


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
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad("occurred_at", f"{text[:40]!r} is not an ISO-8601 date-time") from None
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
    if not COLUMNS.issuperset(raw):
        unknown = sorted(str(k) for k in raw if k not in COLUMNS)
        if unknown == ["None"]:  # csv puts extra fields under the key None
            return RowError("row", "has more fields than the header")
        return RowError(unknown[0], f"is not a known column (expected some of {', '.join(sorted(COLUMNS))})")
    return _typical(raw) or parse_general(raw)


def parse_general(raw: Mapping[str, Any]) -> IncomingEvent | RowError:
    """Every shape and every error; ``_typical`` is a shortcut that must agree with it (tested)."""
    try:
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


def _typical(raw: Mapping[str, Any]) -> IncomingEvent | None:
    """The shape of nearly every row of a real file (external ids; a payload object, or its JSON
    text in CSV and Parquet; an ISO string or a Parquet timestamp), checked in one go at a third of
    the general path's cost. ``None`` sends the row down the general path, which names any error."""
    source_id, type_, payload = raw.get("source_id"), raw.get("type"), raw.get("payload")
    org, at = raw.get("organization_external_id"), raw.get("occurred_at")
    person = raw.get("participant_external_id") or None  # an empty CSV cell is no participant
    if not (type(source_id) is str and type(type_) is str and type(org) is str
            and (person is None or type(person) is str)
            and 0 < len(source_id) <= 200 and 0 < len(type_) <= 100 and 0 < len(org) <= 100
            and (person is None or len(person) <= 100)
            and raw.get("organization_id") in (None, "") and raw.get("participant_id") in (None, "")
            and "\x00" not in f"{source_id}{type_}{org}{person}"):
        return None
    try:
        if type(payload) is str and NUL_ESCAPE not in payload:
            payload = loads_strict(payload)
        if type(at) is str:
            at = datetime.fromisoformat(at)
    except ValueError:
        return None
    if type(payload) is not dict or type(at) is not datetime or at.tzinfo is None:
        return None
    return IncomingEvent(source_id, type_, at, payload, None, org, None, person)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_STRING: Callable[[str], str] = json.encoder.encode_basestring


def _canonical_scalar(value: str | int | None) -> str:
    if value is None:
        return "null"
    return str(value) if isinstance(value, int) else _STRING(value)


def fingerprint_with_payload_json(event: IncomingEvent) -> tuple[str, str]:
    """``(event.fingerprint(), canonical JSON of event.payload)`` with one serialisation of the
    payload instead of two: the importer stores that JSON and needs the fingerprint of every row.

    It spells out ``kernel.hashing.digest`` of the dict ``IncomingEvent.fingerprint`` builds (keys
    sorted, compact, UTF-8), so the two must agree: a property test checks that on arbitrary
    events, and the importer compares both on the first event of every chunk and falls back to
    ``event.fingerprint()`` should they ever differ.
    """
    payload_json = _CANONICAL(event.payload)
    text = "".join((
        '{"occurred_at":', _STRING(event.occurred_at.isoformat()),
        ',"organization":', _canonical_scalar(event.organization_id or event.organization_external_id),
        ',"participant":', _canonical_scalar(event.participant_id or event.participant_external_id),
        ',"payload":', payload_json, ',"type":', _STRING(event.type), "}",
    ))
    return hashlib.sha256(text.encode()).hexdigest(), payload_json


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
