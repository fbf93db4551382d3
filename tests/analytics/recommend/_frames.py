"""Builders of tiny hand-checkable frames for the recommend tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from allegiance.analytics.frames import SCHEMAS

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def lines(rows: Iterable[tuple[str, str] | tuple[str, str, int] | tuple[str, str, int, str]],
          category: dict[str, str] | None = None) -> pl.DataFrame:
    """Order lines from (org, sku[, day[, order suffix]]) tuples; one order per (org, day, suffix)."""
    out = []
    for row in rows:
        org, sku = row[0], row[1]
        day = row[2] if len(row) > 2 else 0  # type: ignore[misc]
        suffix = row[3] if len(row) > 3 else ""  # type: ignore[misc]
        cat = (category or {}).get(sku, f"cat-{sku}")
        out.append((org, f"{org}-{day}{suffix}", T0 + dt.timedelta(days=int(day)), sku, cat, 1, 100))
    return pl.DataFrame(out, schema=SCHEMAS["order_lines"], orient="row")


def orgs(segments: dict[str, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [(o, o, "customer", None, s, "DE", "active", None, None) for o, s in segments.items()],
        schema=SCHEMAS["organizations"], orient="row")
