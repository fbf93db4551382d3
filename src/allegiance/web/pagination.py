"""Paging for the pages' "Next" links (cursor codec shared with the API in ``kernel.cursors``).
The query decides the direction: organizations go by id upwards, histories newest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allegiance.kernel.cursors import encode_cursor


@dataclass(frozen=True)
class Window:
    """One page of rows and the cursor of the next page (None on the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def window(rows: list[dict[str, Any]], limit: int) -> Window:
    """Cut ``limit + 1`` fetched rows to ``limit``; the extra row only says that more exist."""
    items = rows[:limit]
    more = len(rows) > limit and bool(items)
    return Window(items, encode_cursor(items[-1]["id"]) if more else None)
