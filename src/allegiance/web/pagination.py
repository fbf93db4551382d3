"""Opaque cursors for the pages' "Next" links: the id of the last row shown, so a page never skips or
repeats rows when others are inserted meanwhile. The query decides the direction (organizations go
by id upwards, histories newest first). The API keeps its own cursors: entry points do not import
each other."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from allegiance.kernel.errors import ValidationFailed


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("this link's cursor is not one the pages made", field="cursor") from exc


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
