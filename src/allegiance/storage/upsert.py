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
