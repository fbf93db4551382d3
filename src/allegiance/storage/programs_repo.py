"""SQL side of programs, organizations and participants (implements ``ProgramsPort``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit
from allegiance.storage.rows import one_row


def _by(table: Any, column: str) -> Any:
    """``SELECT * FROM table WHERE column = :key AND program_id = :program_id``, built once: every
    event resolves its organization and person through these, and building a statement per call
    (and its cache key) cost more than running it."""
    return select(table).where(table.c[column] == bindparam("key"), table.c.program_id == bindparam("program_id"))


_ORGANIZATION, _ORGANIZATION_BY_EXTERNAL_ID = _by(t.organizations, "id"), _by(t.organizations, "external_id")
_PARTICIPANT, _PARTICIPANT_BY_EXTERNAL_ID = _by(t.participants, "id"), _by(t.participants, "external_id")


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
        return self._one(_ORGANIZATION, program_id, organization_id)

    def organization_by_external_id(self, program_id: int, external_id: str) -> dict[str, Any] | None:
        return self._one(_ORGANIZATION_BY_EXTERNAL_ID, program_id, external_id)

    def _one(self, statement: Any, program_id: int, key: Any) -> dict[str, Any] | None:
        return one_row(self.conn, statement, {"program_id": program_id, "key": key})

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
        return self._one(_PARTICIPANT, program_id, participant_id)

    def participant_by_external_id(self, program_id: int, external_id: str) -> dict[str, Any] | None:
        return self._one(_PARTICIPANT_BY_EXTERNAL_ID, program_id, external_id)

    def insert_participant(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(
            insert(t.participants).values(**values).returning(t.participants.c.id)).scalar_one())

    def update_participant(self, participant_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(t.participants).where(t.participants.c.id == participant_id).values(**values))

    def user_exists(self, user_id: int) -> bool:
        return self.conn.execute(select(t.users.c.id).where(t.users.c.id == user_id)).first() is not None

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
