"""The transactional outbox: domain events are rows written in the use case's own transaction,
then delivered after commit by a relay that saves a cursor per consumer.

Delivery is at-least-once (a crash between a handler's effect and the cursor save replays the
message); handlers are made idempotent by the ``outbox_receipts`` row they write in the same
transaction as their effect, keyed (consumer, message id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.database import Database
from allegiance.storage.upsert import insert_ignore


def emit(conn: Connection, clock: Clock, program_id: int, topic: str, payload: dict[str, Any],
         organization_id: int | None) -> None:
    conn.execute(insert(t.outbox).values(program_id=program_id, topic=topic, payload=payload,
                                         organization_id=organization_id, created_at=clock.now()))


@dataclass(frozen=True)
class Message:
    id: int
    program_id: int
    topic: str
    organization_id: int | None
    payload: dict[str, Any]
    created_at: datetime


Handler = Callable[[Connection, Message], None]


class Relay:
    """Delivers outbox rows to in-process handlers, in id order, one consumer cursor each.

    Why ids and not timestamps: ids are unique and monotonic per database; a gap left by a
    transaction that has not committed yet is re-read on the next poll because the cursor only
    advances past rows actually seen. (On PostgreSQL a slow transaction can commit a lower id
    after a higher one was seen; ``lag_guard`` re-reads a window behind the cursor and the
    receipts make that re-read harmless.)
    """

    def __init__(self, db: Database, clock: Clock, lag_guard: int = 100) -> None:
        self.db = db
        self.clock = clock
        self.handlers: dict[str, list[tuple[str, Handler]]] = {}
        self.lag_guard = lag_guard

    def subscribe(self, consumer: str, topic: str, handler: Handler) -> None:
        self.handlers.setdefault(consumer, []).append((topic, handler))

    def cursor(self, consumer: str) -> int:
        with self.db.read() as conn:
            value = conn.execute(select(t.outbox_cursors.c.last_id)
                                 .where(t.outbox_cursors.c.consumer == consumer)).scalar()
        return int(value or 0)

    def run_once(self, batch: int = 500) -> int:
        """Deliver what is pending to every consumer; returns how many messages were handled."""
        handled = 0
        for consumer, subscriptions in self.handlers.items():
            start = max(0, self.cursor(consumer) - (self.lag_guard if not self.db.is_sqlite else 0))
            with self.db.read() as conn:
                rows = conn.execute(select(t.outbox).where(t.outbox.c.id > start)
                                    .order_by(t.outbox.c.id).limit(batch)).all()
            for row in rows:
                message = Message(row.id, row.program_id, row.topic, row.organization_id, row.payload,
                                  row.created_at)
                for topic, handler in subscriptions:
                    if topic not in (message.topic, "*"):
                        continue
                    with self.db.write() as conn:
                        seen = conn.execute(select(t.outbox_receipts.c.message_id).where(
                            t.outbox_receipts.c.consumer == consumer,
                            t.outbox_receipts.c.message_id == message.id)).first()
                        if seen:
                            continue
                        handler(conn, message)
                        insert_ignore(conn, t.outbox_receipts, {"consumer": consumer, "message_id": message.id,
                                                                "handled_at": self.clock.now()},
                                      ["consumer", "message_id"])
                        handled += 1
            if rows:
                self._save_cursor(consumer, max(self.cursor(consumer), rows[-1].id))
        return handled

    def _save_cursor(self, consumer: str, last_id: int) -> None:
        with self.db.write() as conn:
            insert_ignore(conn, t.outbox_cursors, {"consumer": consumer, "last_id": 0,
                                                   "updated_at": self.clock.now()}, ["consumer"])
            conn.execute(update(t.outbox_cursors).where(t.outbox_cursors.c.consumer == consumer)
                         .values(last_id=last_id, updated_at=self.clock.now()))
