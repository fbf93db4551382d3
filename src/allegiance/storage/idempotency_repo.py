"""Idempotency keys, stored in the same transaction as the effect they guard."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, insert, select, text

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t


class SqlIdempotency:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    def try_lock(self, program_id: int, scope: str, key: str) -> bool:
        """PostgreSQL: a transaction-scoped advisory lock marks the key as in flight across processes
        (released by commit or rollback, so a crash never leaves it stuck). SQLite needs none: the
        single writer already serialises, and the in-process registry answers 409 meanwhile."""
        if self.conn.dialect.name != "postgresql":
            return True
        lock_id = int.from_bytes(hashlib.sha256(f"{program_id}:{scope}:{key}".encode()).digest()[:8], "big",
                                 signed=True)
        return bool(self.conn.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id}).scalar())

    def find(self, program_id: int, scope: str, key: str) -> dict[str, Any] | None:
        k = t.idempotency_keys
        row = self.conn.execute(select(k.c.request_hash, k.c.response_status, k.c.response_body).where(
            k.c.program_id == program_id, k.c.scope == scope, k.c.key == key)).first()
        return dict(row._mapping) if row else None

    def store(self, program_id: int, scope: str, key: str, request_hash: str, status: int,
              body: Any) -> None:
        self.conn.execute(insert(t.idempotency_keys).values(
            program_id=program_id, scope=scope, key=key, request_hash=request_hash, response_status=status,
            response_body=body, created_at=self.clock.now()))
