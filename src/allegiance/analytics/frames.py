"""The frames every analytics function reads, with their exact column names and types.

Organizations and people are keyed by their external id (the operator's CRM/ERP id, unique per
program), so results read the same whether they came from the database, an import file or the
synthetic generator, and can be joined back to the operator's own systems. Money is integer
minor units; times are UTC.

Frames (all Polars DataFrames):

- ``organizations``: org (str), name (str), kind (str), parent (str|null), segment (str|null),
  country (str|null), status (str), joined_on (date|null), left_on (date|null)
- ``people``: participant (str), org (str), role (str), status (str), left_on (date|null)
- ``orders``: org (str), order_id (str), participant (str|null), occurred_at (datetime UTC),
  amount_minor (int64), channel (str|null)
- ``order_lines``: org (str), order_id (str), occurred_at (datetime UTC), sku (str),
  category (str), quantity (int64), value_minor (int64)
- ``returns``: org (str), order_id (str), occurred_at (datetime UTC), amount_minor (int64)
- ``activity``: every other event: org (str), participant (str|null), type (str),
  occurred_at (datetime UTC)
- ``responses``: survey answers carrying an NPS score: org (str), participant (str|null),
  occurred_at (datetime UTC), score (int8, 0..10)
- ``program``: ledger movements of the loyalty program: org (str), participant (str|null),
  occurred_at (datetime UTC), kind (str: "earned" | "redeemed"), amount (int64)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

_UTC = pl.Datetime("us", "UTC")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "organizations": {
        "org": pl.String(), "name": pl.String(), "kind": pl.String(), "parent": pl.String(),
        "segment": pl.String(), "country": pl.String(), "status": pl.String(),
        "joined_on": pl.Date(), "left_on": pl.Date(),
    },
    "people": {
        "participant": pl.String(), "org": pl.String(), "role": pl.String(),
        "status": pl.String(), "left_on": pl.Date(),
    },
    "orders": {
        "org": pl.String(), "order_id": pl.String(), "participant": pl.String(),
        "occurred_at": _UTC, "amount_minor": pl.Int64(), "channel": pl.String(),
    },
    "order_lines": {
        "org": pl.String(), "order_id": pl.String(), "occurred_at": _UTC, "sku": pl.String(),
        "category": pl.String(), "quantity": pl.Int64(), "value_minor": pl.Int64(),
    },
    "returns": {
        "org": pl.String(), "order_id": pl.String(), "occurred_at": _UTC,
        "amount_minor": pl.Int64(),
    },
    "activity": {
        "org": pl.String(), "participant": pl.String(), "type": pl.String(), "occurred_at": _UTC,
    },
    "responses": {
        "org": pl.String(), "participant": pl.String(), "occurred_at": _UTC, "score": pl.Int8(),
    },
    "program": {
        "org": pl.String(), "participant": pl.String(), "occurred_at": _UTC, "kind": pl.String(),
        "amount": pl.Int64(),
    },
}

# Event types that feed the dedicated frames; everything else lands in ``activity``.
ORDER_TYPES = frozenset({"order.placed"})
RETURN_TYPES = frozenset({"order.returned"})
# A survey answer counts as an NPS response when its payload carries an integer 0..10 under one
# of these keys (imported NPS files usually say "nps" or "score").
RESPONSE_TYPES = frozenset({"survey.answered", "survey.completed", "nps.answered", "nps.responded"})
NPS_KEYS = ("nps", "nps_score", "score")


def empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[name])


def conform(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast a frame to its declared schema; a missing column is a programming error."""
    schema = SCHEMAS[name]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"frame {name!r} lacks columns {missing}")
    return frame.select([pl.col(c).cast(t, strict=False) for c, t in schema.items()])


@dataclass(frozen=True)
class Frames:
    """One program's history as analytics sees it."""

    organizations: pl.DataFrame = field(default_factory=lambda: empty("organizations"))
    people: pl.DataFrame = field(default_factory=lambda: empty("people"))
    orders: pl.DataFrame = field(default_factory=lambda: empty("orders"))
    order_lines: pl.DataFrame = field(default_factory=lambda: empty("order_lines"))
    returns: pl.DataFrame = field(default_factory=lambda: empty("returns"))
    activity: pl.DataFrame = field(default_factory=lambda: empty("activity"))
    responses: pl.DataFrame = field(default_factory=lambda: empty("responses"))
    program: pl.DataFrame = field(default_factory=lambda: empty("program"))


def nps_score(payload: Mapping[str, Any]) -> int | None:
    for key in NPS_KEYS:
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10:
            return value
    return None


class FrameBuilder:
    """Sort a stream of events into frames; shared by the database reader and the synthetic path."""

    def __init__(self) -> None:
        self._rows: dict[str, list[tuple[Any, ...]]] = {n: [] for n in
                                                         ("orders", "order_lines", "returns", "activity", "responses")}

    def add(self, type_: str, org: str | None, participant: str | None, occurred_at: Any,
            payload: Mapping[str, Any]) -> None:
        if org is None:
            return
        rows = self._rows
        if type_ in ORDER_TYPES:
            order_id = str(payload.get("order_id") or "")
            rows["orders"].append((org, order_id, participant, occurred_at,
                                   int(payload.get("amount_minor") or 0), payload.get("channel")))
            for line in payload.get("lines") or ():
                quantity = int(line.get("quantity") or 0)
                value = line.get("value_minor")
                if value is None:
                    value = quantity * int(line.get("unit_price_minor") or 0)
                rows["order_lines"].append((org, order_id, occurred_at, str(line.get("sku")),
                                            str(line.get("category")), quantity, int(value)))
        elif type_ in RETURN_TYPES:
            rows["returns"].append((org, str(payload.get("order_id") or ""), occurred_at,
                                    int(payload.get("amount_minor") or 0)))
        else:
            rows["activity"].append((org, participant, type_, occurred_at))
            if type_ in RESPONSE_TYPES:
                score = nps_score(payload)
                if score is not None:
                    rows["responses"].append((org, participant, occurred_at, score))

    def frame(self, name: str) -> pl.DataFrame:
        schema = SCHEMAS[name]
        return pl.DataFrame(self._rows[name], schema=schema, orient="row")


def from_synthetic(program: Any, *, events: Iterable[Any] | None = None) -> Frames:
    """Frames of a `synthetic.SyntheticProgram` (or any object with the same records)."""
    builder = FrameBuilder()
    for ev in events if events is not None else program.events():
        builder.add(ev.type, ev.organization_external_id, ev.participant_external_id,
                    ev.occurred_at, ev.payload)
    orgs = pl.DataFrame(
        [(o.external_id, o.name, o.kind, o.parent_external_id, o.segment, o.country, o.status,
          o.joined_on, o.left_on) for o in program.organizations],
        schema=SCHEMAS["organizations"], orient="row")
    people = pl.DataFrame(
        [(p.external_id, p.organization_external_id, p.role, p.status, p.left_on)
         for p in program.participants],
        schema=SCHEMAS["people"], orient="row")
    return Frames(organizations=orgs, people=people, orders=builder.frame("orders"),
                  order_lines=builder.frame("order_lines"), returns=builder.frame("returns"),
                  activity=builder.frame("activity"), responses=builder.frame("responses"))
