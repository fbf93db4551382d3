"""Rows as a flat export writes them: one ``payload.<field>`` text cell per payload field."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
              (dict, "object"), (type(None), "null"))


def cell(value: Any) -> str:
    """What a CSV writer puts in the cell: text as is, anything else as its JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def flattened(row: dict[str, Any], *, as_text: bool = True) -> dict[str, Any]:
    out = {key: value for key, value in row.items() if key != "payload"}
    for key, value in row["payload"].items():
        out[f"payload.{key}"] = cell(value) if as_text else value
    return out


def json_type(value: Any) -> str:
    return next(name for kind, name in JSON_TYPES if isinstance(value, kind))


def typed_schemas(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per event type, a schema declaring the JSON type of every payload field the rows hold."""
    schemas: dict[str, dict[str, Any]] = {}
    for row in rows:
        properties = schemas.setdefault(row["type"], {"type": "object", "properties": {}})["properties"]
        for key, value in row["payload"].items():
            kinds = properties.setdefault(key, {"type": []})["type"]
            if json_type(value) not in kinds:
                kinds.append(json_type(value))
    return schemas
