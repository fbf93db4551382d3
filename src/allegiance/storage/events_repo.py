"""SQL side of events (implements ``EventsPort``) and event types.

The single-event write path runs once per API request, so its statements are built once, here,
with bind parameters: building a SQLAlchemy statement (and its cache key) per call cost more than
executing it. Type schemas come from a short-lived cache (``storage.cache``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from allegiance.events.service import SourceIdTaken
from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.cache import caches_of
from allegiance.storage.database import after_commit

_e, _et = t.events, t.event_types
_SCHEMA = select(_et.c.payload_schema).where(_et.c.program_id == bindparam("program_id"),
                                             _et.c.name == bindparam("name"))
_EXISTING = select(_e.c.id, _e.c.payload_hash).where(_e.c.program_id == bindparam("program_id"),
                                                     _e.c.source_id == bindparam("source_id"))
_EVENT_COLUMNS = ("program_id", "source_id", "type", "organization_id", "participant_id", "occurred_at", "payload",
                  "payload_hash", "received_at")
# INSERT ... ON CONFLICT (program_id, source_id) DO NOTHING RETURNING id: one statement both stores a
# new event and detects a retry (no row back), without a read first or a unique-violation error.
_INSERT_NEW = {
    dialect: make(_e).values({c: bindparam(c, type_=_e.c[c].type) for c in _EVENT_COLUMNS})
    .on_conflict_do_nothing(index_elements=["program_id", "source_id"]).returning(_e.c.id)
    for dialect, make in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}
# The same row ``outbox.emit`` writes, with a statement built once (it is written for every event).
_OUTBOX = insert(t.outbox).values({c: bindparam(c, type_=t.outbox.c[c].type)
                                   for c in ("program_id", "topic", "payload", "organization_id", "created_at")})
_TRANSACTIONS = select(t.transactions.c.id).where(t.transactions.c.event_id == bindparam("event_id")) \
    .order_by(t.transactions.c.id)


class SqlEvents:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    def event_type_schema(self, program_id: int, name: str) -> dict[str, Any] | None:
        """The type's payload schema (cached for a few seconds; callers must not modify it)."""
        cache = caches_of(self.conn).event_types
        key = (program_id, name)
        schema = cache.get(key)
        if schema is None:
            epoch = cache.epoch()
            value = self.conn.execute(_SCHEMA, {"program_id": program_id, "name": name}).scalar()
            if value is None:
                return None
            schema = dict(value)
            cache.put(key, schema, epoch)
        return schema

    def existing_event(self, program_id: int, source_id: str) -> tuple[int, str] | None:
        row = self.conn.execute(_EXISTING, {"program_id": program_id, "source_id": source_id}).first()
        return (row.id, row.payload_hash) if row else None

    def insert_event(self, values: dict[str, Any]) -> int:
        """Store a new event; raises ``SourceIdTaken`` (writing nothing) if its source id is stored."""
        statement = _INSERT_NEW.get(self.conn.dialect.name)
        if statement is None:  # another dialect: the portable two-step form
            if self.existing_event(values["program_id"], values["source_id"]) is not None:
                raise SourceIdTaken(values["source_id"])
            return int(self.conn.execute(insert(_e).values(**values).returning(_e.c.id)).scalar_one())
        event_id = self.conn.execute(statement, values).scalar()
        if event_id is None:
            raise SourceIdTaken(values["source_id"])
        return int(event_id)

    def transactions_of_event(self, event_id: int) -> list[int]:
        return list(self.conn.execute(_TRANSACTIONS, {"event_id": event_id}).scalars())

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        """Write an outbox message in this transaction (as ``outbox.emit``)."""
        self.conn.execute(_OUTBOX, {"program_id": program_id, "topic": topic, "payload": payload,
                                    "organization_id": organization_id, "created_at": self.clock.now()})

    def upsert_event_type(self, program_id: int, name: str, description: str, schema: dict[str, Any]) -> None:
        existing = self.conn.execute(select(_et.c.id).where(_et.c.program_id == program_id,
                                                            _et.c.name == name)).scalar()
        if existing is None:
            self.conn.execute(insert(_et).values(program_id=program_id, name=name, description=description,
                                                 payload_schema=schema, created_at=self.clock.now()))
        else:
            self.conn.execute(update(_et).where(_et.c.id == existing).values(description=description,
                                                                             payload_schema=schema))
        after_commit(self.conn, caches_of(self.conn).event_types.invalidate)
