"""One row of a bulk file → an ``IncomingEvent``, or a ``RowError`` naming the column and reason.

Pure and cheap on purpose: the importer calls this for every row of files with millions of rows,
so it builds no pydantic model and compiles each event type's schema once. The rules mirror the
API's ``EventIn`` (same lengths, same "time zone offset required"), so a row the importer accepts
is one the API would accept, and the resulting ``IncomingEvent`` has the same fingerprint.

Two steps: ``parse_row`` checks the shape, ``PayloadChecker.check`` the type and payload schema.
Their outcomes differ in weight: a shape error is final, while a schema error does not matter for a
row whose source id was stored before (it is a duplicate or a conflict), which only the database
knows. The importer runs both before it asks (``events.prepare``) and keeps the schema error aside.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from allegiance.events.model import IncomingEvent
from allegiance.events.schemas import InvalidPayload, validate_payload, validator_for

COLUMNS = frozenset({
    "source_id", "type", "occurred_at", "organization_id", "organization_external_id",
    "participant_id", "participant_external_id", "payload",
})
NUL_ESCAPE = "\\u0000"  # PostgreSQL cannot store U+0000 in text or JSONB
PAYLOAD_COLUMN = "payload."  # ``payload.amount``: one payload field per column, as ERP exports are flat


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


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text[:40]} is too large for a JSON number")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
# orjson reads an integer beyond 64 bits as a float, silently; json keeps it exact (as the API
# does). Any run of 19 digits sends the text to json: rare, and never wrong, only slower. Found by
# turning every digit into "0" (bytes.translate, 5x faster than re's \d{19} on a 300-byte line).
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def loads_strict(text: str | bytes) -> Any:
    """Parse JSON text, refusing NaN and Infinity (not JSON; PostgreSQL's JSONB refuses them too),
    numbers too large for a float and lone surrogates (not Unicode): ``ValueError`` says why.

    orjson, about 3x faster than ``json``: this runs once per row of bulk files. ``json`` gives
    the error message (the same messages as before orjson), and reads exactly the rare text with
    integers orjson would turn into floats."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if _LONG_NUMBER not in data.translate(_ZEROS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            _loads_json(text)  # raises with json's message; returns on what only orjson refuses
            raise ValueError(str(exc)) from None
    value = _loads_json(text)
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise ValueError(f"a string is not valid Unicode ({exc.reason})") from None
    return value


def _loads_json(text: str | bytes) -> Any:
    """json's decoder through its scanner (``json.loads`` with options builds a decoder per call),
    falling back to ``decode`` for the exact error or surrounding whitespace."""
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
        return unknown_columns(raw)
    fields = typical_row(raw)
    if fields is None:
        return parse_general(raw)
    source_id, type_, at, payload, org, person = fields
    return IncomingEvent(source_id, type_, at, payload, None, org, None, person)


def unknown_columns(raw: Mapping[Any, Any]) -> RowError:
    unknown = sorted(str(k) for k in raw if k not in COLUMNS)
    if unknown == ["None"]:  # csv puts extra fields under the key None
        return RowError("row", "has more fields than the header")
    return RowError(unknown[0], f"is not a known column (expected some of {', '.join(sorted(COLUMNS))}, "
                                f"or {PAYLOAD_COLUMN}FIELD for one field of the payload)")


def parse_general(raw: Mapping[str, Any]) -> IncomingEvent | RowError:
    """Every shape and every error; ``typical`` is a shortcut that must agree with it (tested)."""
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


Typical = tuple[str, str, datetime, dict[str, Any], str, str | None]


def typical_row(raw: Mapping[str, Any]) -> Typical | None:
    return typical(raw.get("source_id"), raw.get("type"), raw.get("occurred_at"), raw.get("payload"),
                   raw.get("organization_external_id"), raw.get("participant_external_id"),
                   raw.get("organization_id"), raw.get("participant_id"))


def typical(source_id: Any, type_: Any, at: Any, payload: Any, org: Any, person: Any, org_id: Any,
            person_id: Any) -> Typical | None:
    """The shape of nearly every row of a real file (external ids; a payload object, or its JSON
    text in CSV and Parquet; an ISO string or a Parquet timestamp), checked in one go at a third of
    the general path's cost: ``(source_id, type, occurred_at, payload, organization_external_id,
    participant_external_id)``. ``None`` sends the row down the general path, which names any
    error. Positional, so the Parquet reader's columns need no dict per row."""
    person = person or None  # an empty CSV cell is no participant
    if not (type(source_id) is str and type(type_) is str and type(org) is str
            and (person is None or type(person) is str)
            and 0 < len(source_id) <= 200 and 0 < len(type_) <= 100 and 0 < len(org) <= 100
            and (person is None or len(person) <= 100)
            and org_id in (None, "") and person_id in (None, "")
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
    return source_id, type_, at, payload, org, person


_WHOLE = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def _typed(text: str, schema: Any) -> Any:
    """A CSV cell as the JSON value its payload schema declares: ``"120"`` is 120 where the field is
    an integer, ``"true"`` a boolean, ``"[...]"`` an array. Text that fits none of the declared types
    stays text, so the schema check then names the field and why; ``string`` is tried last."""
    declared = schema.get("type") if isinstance(schema, dict) else None
    kinds = declared if isinstance(declared, list) else [declared]
    stripped = text.strip()
    whole = _WHOLE.fullmatch(stripped) is not None
    for kind in sorted(kinds, key=lambda kind: kind == "string"):
        if kind in ("integer", "number") and whole:
            return int(stripped)
        if kind == "number":
            try:
                return _finite(stripped)
            except ValueError:
                continue
        if kind == "boolean" and stripped.lower() in _TRUE | _FALSE:
            return stripped.lower() in _TRUE
        if kind == "null" and stripped == "null":
            return None
        if kind in ("array", "object") and stripped[:1] in "[{":
            try:
                return loads_strict(stripped)
            except ValueError:
                continue
    return text


def _field_schema(schema: Any, path: list[str]) -> Any:
    for name in path:
        properties = schema.get("properties") if isinstance(schema, dict) else None
        schema = properties.get(name) if isinstance(properties, dict) else None
    return schema


def fold_payload_columns(raw: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any] | RowError:
    """Move ``payload.<field>`` columns into the row's payload (``payload.site.city`` nests), next to
    what a ``payload`` column holds; text cells are typed by the event type's schema (see ``_typed``).
    An empty cell is an absent field. A field given both ways is refused, naming the column."""
    flat = [key for key in raw if type(key) is str and key.startswith(PAYLOAD_COLUMN)]
    if not flat:
        return raw
    row = {key: value for key, value in raw.items() if key not in flat}
    try:
        payload = dict(_payload(row))
    except _Bad as bad:
        return bad.error
    type_ = row.get("type")
    schema = schemas.get(type_) if type(type_) is str else None
    for column in flat:
        value = raw[column]
        path = column[len(PAYLOAD_COLUMN):].split(".")
        if not all(path):
            return RowError(column, f"must name a payload field: {PAYLOAD_COLUMN}FIELD")
        if value is None or value == "":
            continue
        target = payload
        for name in path[:-1]:
            inner = target.get(name, {})
            if not isinstance(inner, dict):
                return RowError(column, f"{name!r} is not an object in the payload")
            target[name] = target = dict(inner)  # a copy: the row's own payload object is never changed
        if path[-1] in target:
            return RowError(column, "is given twice (in the payload column too)")
        target[path[-1]] = _typed(value, _field_schema(schema, path)) if isinstance(value, str) else value
    row["payload"] = payload
    return row


def known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone (``Europe/Berlin``; the ``tzdata`` package ships them)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_time(raw: Mapping[str, Any], zone: tzinfo) -> Mapping[str, Any]:
    """``occurred_at`` written without an offset (``2026-12-01 09:30``, a date alone, a Parquet
    timestamp without a time zone) read as a wall-clock time in ``zone``; the rest as it is. Text
    that is no date stays as it is, for ``_occurred_at`` to name."""
    value = raw.get("occurred_at")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return raw
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return raw
    return {**raw, "occurred_at": value.replace(tzinfo=zone)}


class PayloadChecker:
    """The program's declared event types, each schema compiled once (fastjsonschema), and how the
    rows of this file are read: ``zone`` is the time zone of times written without an offset (none:
    such rows are refused, as the API refuses them)."""

    def __init__(self, schemas: Mapping[str, dict[str, Any]], zone: str | None = None) -> None:
        self.schemas = dict(schemas)
        self.zone = ZoneInfo(zone) if zone else None
        self._validators: dict[str, Callable[[Any], Any]] = {
            name: validator_for(schema) for name, schema in self.schemas.items()}

    def fold(self, raw: Mapping[str, Any]) -> Mapping[str, Any] | RowError:
        """A row as the file means it: ``fold_payload_columns`` with this program's schemas, and
        times without an offset in ``zone`` (``local_time``), if one was given."""
        folded = fold_payload_columns(raw, self.schemas)
        if self.zone is None or isinstance(folded, RowError):
            return folded
        return local_time(folded, self.zone)

    def check(self, event: IncomingEvent) -> RowError | None:
        return self.check_payload(event.type, event.payload)

    def check_payload(self, type_: str, payload: dict[str, Any]) -> RowError | None:
        validate = self._validators.get(type_)
        if validate is None:
            return RowError("type", f"event type {type_!r} is not declared in this program")
        try:
            validate(payload)
        except Exception:
            # Slow path, only for bad rows: the shared helper names the JSON path and the rule.
            try:
                validate_payload(self.schemas[type_], payload)
            except InvalidPayload as exc:
                return RowError(exc.field or "payload", exc.message)
            except Exception as exc:  # a validator failing on odd input is still this row's problem
                return RowError("payload", f"could not be validated: {exc}")
            return RowError("payload", "is invalid")
        return None


def to_event(raw: Mapping[str, Any], checker: PayloadChecker) -> IncomingEvent | RowError:
    """Both steps: shape, then type and payload schema."""
    folded = checker.fold(raw)
    event = folded if isinstance(folded, RowError) else parse_row(folded)
    if isinstance(event, RowError):
        return event
    return checker.check(event) or event
