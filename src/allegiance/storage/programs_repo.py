"""SQL side of programs, organizations and participants (implements ``ProgramsPort``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit
from allegiance.storage.rows import one_row


class SqlPrograms:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    def program(self, program_id: int) -> dict[str, Any] | None:
        return one_row(self.conn, select(t.programs).where(t.programs.c.id == program_id))

    def program_by_slug(self, slug: str) -> dict[str, Any] | None:
        return one_row(self.conn, select(t.programs).where(t.programs.c.slug == slug))

    def insert_program(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(t.programs).values(**values).returning(t.programs.c.id)).scalar_one())

    def update_program(self, program_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(t.programs).where(t.programs.c.id == program_id).values(**values))

    def organization(self, program_id: int, organization_id: int) -> dict[str, Any] | None:
        o = t.organizations
        return one_row(self.conn, select(o).where(o.c.id == organization_id, o.c.program_id == program_id))

    def organization_by_external_id(self, program_id: int, external_id: str) -> dict[str, Any] | None:
        o = t.organizations
        return one_row(self.conn, select(o).where(o.c.external_id == external_id, o.c.program_id == program_id))

    def ancestors(self, program_id: int, organization_id: int) -> list[int]:
        """Walk up the parent chain (bounded: hierarchies are shallow, and a cycle cannot be stored)."""
        chain: list[int] = []
        current: int | None = organization_id
        while current is not None and len(chain) < 64:
            parent = self.conn.execute(select(t.organizations.c.parent_id).where(
                t.organizations.c.id == current, t.organizations.c.program_id == program_id)).scalar()
            if parent is None:
                break
            chain.append(parent)
            current = parent
        return chain

    def insert_organization(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(
            insert(t.organizations).values(**values).returning(t.organizations.c.id)).scalar_one())

    def update_organization(self, organization_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(t.organizations).where(t.organizations.c.id == organization_id).values(**values))

    def participant(self, program_id: int, participant_id: int) -> dict[str, Any] | None:
        p = t.participants
        return one_row(self.conn, select(p).where(p.c.id == participant_id, p.c.program_id == program_id))

    def participant_by_external_id(self, program_id: int, external_id: str) -> dict[str, Any] | None:
        p = t.participants
        return one_row(self.conn, select(p).where(p.c.external_id == external_id, p.c.program_id == program_id))

    def insert_participant(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(
            insert(t.participants).values(**values).returning(t.participants.c.id)).scalar_one())

    def update_participant(self, participant_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(t.participants).where(t.participants.c.id == participant_id).values(**values))

    def user_exists(self, user_id: int) -> bool:
        return self.conn.execute(select(t.users.c.id).where(t.users.c.id == user_id)).first() is not None

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
