"""Tiny frame builders for hand-computed metric examples (schemas from analytics.frames)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from allegiance.analytics.frames import SCHEMAS

UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def frame(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A frame of `name` from partial rows: missing columns are null."""
    schema = SCHEMAS[name]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema, orient="row") \
        if rows else pl.DataFrame(schema=schema)


def orders(*rows: tuple[str, dt.datetime, int] | tuple[str, dt.datetime, int, str]) -> pl.DataFrame:
    """(org, occurred_at, amount_minor[, order_id]); order ids default to org-n."""
    out = []
    for n, row in enumerate(rows):
        org, when, amount = row[0], row[1], row[2]
        order_id = row[3] if len(row) > 3 else f"{org}-{n}"
        out.append({"org": org, "order_id": order_id, "occurred_at": when, "amount_minor": amount})
    return frame("orders", out)


def returns(*rows: tuple[str, str, dt.datetime, int]) -> pl.DataFrame:
    """(org, order_id, occurred_at, amount_minor)."""
    return frame("returns", [{"org": o, "order_id": i, "occurred_at": w, "amount_minor": a} for o, i, w, a in rows])


def organizations(*rows: tuple[str, str | None] | tuple[str, str | None, dt.date | None],
                  kind: str = "customer", joined_on: dt.date | None = None) -> pl.DataFrame:
    """(org, segment[, left_on]); every org of `kind`, joined on `joined_on`."""
    return frame("organizations", [
        {"org": r[0], "name": r[0], "kind": kind, "segment": r[1], "status": "left" if len(r) > 2 and r[2] else
         "active", "joined_on": joined_on, "left_on": r[2] if len(r) > 2 else None}
        for r in rows])
