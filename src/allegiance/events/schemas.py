"""Event payload validation against each type's JSON Schema, compiled once per schema.

fastjsonschema compiles a schema to Python code: about 10x faster than interpreting it, which
matters for bulk imports of millions of rows. Errors name the JSON path of the bad field.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import fastjsonschema

from allegiance.kernel.errors import ValidationFailed
from allegiance.kernel.hashing import canonical_json


class InvalidPayload(ValidationFailed):
    code = "invalid_payload"


class UnknownEventType(ValidationFailed):
    code = "unknown_event_type"


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema that does not compile, naming why, before it is stored."""
    if not isinstance(schema, dict):
        raise ValidationFailed("must be a JSON Schema object", field="payload_schema")
    try:
        fastjsonschema.compile(schema)
    except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError) as exc:
        raise ValidationFailed(f"not a valid JSON Schema: {exc}", field="payload_schema") from exc


@lru_cache(maxsize=512)
def _compiled(schema_json: str) -> Callable[[Any], Any]:
    import json

    return fastjsonschema.compile(json.loads(schema_json))


def validator_for(schema: dict[str, Any]) -> Callable[[Any], Any]:
    return _compiled(canonical_json(schema))


def validate_payload(schema: dict[str, Any], payload: Any, *, prefix: str = "payload") -> None:
    try:
        validator_for(schema)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = exc.path[1:] if exc.path and exc.path[0] == "data" else list(exc.path or [])
        location = prefix + "".join(f"[{p}]" if isinstance(p, int) or str(p).isdigit() else f".{p}" for p in path)
        reason = (exc.message or "is invalid").replace("data.", "").replace("data ", "")
        if exc.rule == "required" and isinstance(exc.rule_definition, list):
            missing = [name for name in exc.rule_definition if not isinstance(exc.value, dict)
                       or name not in exc.value]
            if missing:
                location = f"{location}.{missing[0]}"
                reason = "is required"
        raise InvalidPayload(reason, field=location) from exc
