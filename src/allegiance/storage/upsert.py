"""Race-safe "insert if absent" for both dialects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any], conflict: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a concurrent creator wins, nobody fails."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict))


def insert_new_id(conn: Connection, table: Table, values: dict[str, Any], conflict: list[str]) -> int | None:
    """The new row's id, or None when a row with the same ``conflict`` key already existed — the
    database decides, so two concurrent creators cannot both succeed."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    query = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id)
    value = conn.execute(query).scalar()
    return int(value) if value is not None else None


def save_program_document(conn: Connection, table: Table, program_id: int, document: dict[str, Any], *,
                          by: str, at: Any) -> None:
    """Create or replace a program's one settings document (a row keyed by ``program_id``)."""
    insert_ignore(conn, table, {"program_id": program_id, "document": document, "updated_by": by,
                                "updated_at": at}, ["program_id"])
    conn.execute(table.update().where(table.c.program_id == program_id)
                 .values(document=document, updated_by=by, updated_at=at))
