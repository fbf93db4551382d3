"""SQL side of events (implements ``EventsPort``) and event types."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit


class SqlEvents:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    def event_type_schema(self, program_id: int, name: str) -> dict[str, Any] | None:
        et = t.event_types
        value = self.conn.execute(
            select(et.c.payload_schema).where(et.c.program_id == program_id, et.c.name == name)).scalar()
        return dict(value) if value is not None else None

    def existing_event(self, program_id: int, source_id: str) -> tuple[int, str] | None:
        row = self.conn.execute(select(t.events.c.id, t.events.c.payload_hash).where(
            t.events.c.program_id == program_id, t.events.c.source_id == source_id)).first()
        return (row.id, row.payload_hash) if row else None

    def insert_event(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(t.events).values(**values).returning(t.events.c.id)).scalar_one())

    def transactions_of_event(self, event_id: int) -> list[int]:
        return list(self.conn.execute(
            select(t.transactions.c.id).where(t.transactions.c.event_id == event_id).order_by(t.transactions.c.id)
        ).scalars())

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)

    def upsert_event_type(self, program_id: int, name: str, description: str, schema: dict[str, Any]) -> None:
        et = t.event_types
        existing = self.conn.execute(select(et.c.id).where(et.c.program_id == program_id, et.c.name == name)).scalar()
        if existing is None:
            self.conn.execute(insert(et).values(program_id=program_id, name=name, description=description,
                                                payload_schema=schema, created_at=self.clock.now()))
        else:
            from sqlalchemy import update

            self.conn.execute(update(et).where(et.c.id == existing).values(description=description,
                                                                            payload_schema=schema))
