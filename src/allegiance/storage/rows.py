"""Query results as plain dicts: what the repositories hand to the pure domains."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


def one_row(conn: Connection, query: Any, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    row = conn.execute(query, params).first()
    return dict(row._mapping) if row else None


def all_rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]
