"""Opaque keyset cursors: the id of the last row shown, so a page never skips or repeats rows
when others are inserted meanwhile. Shared by the API and the pages."""

from __future__ import annotations

import base64

from allegiance.kernel.errors import ValidationFailed


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The row id inside a cursor; None for no cursor; ``ValidationFailed`` naming ``cursor`` otherwise."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("not a cursor returned by this server", field="cursor") from exc
