"""SQL side of tiers (implements ``allegiance.tiers.ports.TiersPort``).

Running totals are incremented with one ``INSERT … ON CONFLICT DO UPDATE`` (no read-then-write
race on either database); a status row is locked (``FOR UPDATE`` on PostgreSQL; SQLite has one
writer) before it changes, so two events of one group cannot both write the same upgrade.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.cache import caches_of, unless_unconfigured
from allegiance.storage.database import after_commit
from allegiance.storage.outbox import emit
from allegiance.storage.rows import all_rows, one_row
from allegiance.storage.tables_tiers import (
    discount_cards,
    store_credit_applications,
    tier_credits,
    tier_history,
    tier_ladders,
    tier_measures,
    tier_participant_marks,
    tier_status,
)


@functools.cache
def measure_upsert(dialect: str) -> Any:
    """Add to a daily total, creating it if absent: one statement, no read-then-write race. Built
    once per dialect (building an ``ON CONFLICT`` statement costs SQLAlchemy ~0.5 ms: more than
    running it); the values come as parameters, one row or many."""
    m = tier_measures
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(m)
    return statement.on_conflict_do_update(
        index_elements=["program_id", "scope", "measure", "subject", "day"],
        set_={"amount": m.c.amount + statement.excluded.amount, "count": m.c.count + statement.excluded.count})


@functools.cache
def _mark_upsert(dialect: str) -> Any:
    m = tier_participant_marks
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(m)
    latest = func.max if dialect == "sqlite" else func.greatest
    return statement.on_conflict_do_update(index_elements=["program_id", "scope", "measure", "participant_id"],
                                           set_={"last_at": latest(m.c.last_at, statement.excluded.last_at)})


class SqlTiers:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock
        self._upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert

    # -- ladders and cards --------------------------------------------------------------------
    def ladders(self, program_id: int) -> list[dict[str, Any]]:
        lad = tier_ladders
        return unless_unconfigured(self.conn, "ladders", program_id, lambda: all_rows(
            self.conn, select(lad).where(lad.c.program_id == program_id).order_by(lad.c.id)), [])

    def _configuration_changed(self) -> None:
        """A ladder or card was added or removed: events must look again (see ``storage.cache``)."""
        after_commit(self.conn, caches_of(self.conn).unconfigured.invalidate)

    def ladder(self, program_id: int, code: str) -> dict[str, Any] | None:
        lad = tier_ladders
        return one_row(self.conn, select(lad).where(lad.c.program_id == program_id, lad.c.code == code))

    def insert_ladder(self, program_id: int, code: str, level: str, document: dict[str, Any], by: str) -> int:
        now = self.clock.now()
        self._configuration_changed()
        return int(self.conn.execute(insert(tier_ladders).values(
            program_id=program_id, code=code, level=level, document=document, version=1, created_by=by,
            created_at=now, updated_by=by, updated_at=now).returning(tier_ladders.c.id)).scalar_one())

    def update_ladder(self, ladder_id: int, document: dict[str, Any], by: str) -> None:
        lad = tier_ladders
        self.conn.execute(update(lad).where(lad.c.id == ladder_id).values(
            document=document, version=lad.c.version + 1, updated_by=by, updated_at=self.clock.now()))

    def delete_ladder(self, ladder_id: int) -> None:
        program_id = self.conn.execute(select(tier_ladders.c.program_id)
                                       .where(tier_ladders.c.id == ladder_id)).scalar_one()
        scope = f"ladder:{ladder_id}"
        for table in (tier_measures, tier_participant_marks):
            self.conn.execute(delete(table).where(table.c.program_id == program_id, table.c.scope == scope))
        for table in (tier_history, tier_status):
            self.conn.execute(delete(table).where(table.c.ladder_id == ladder_id))
        self.conn.execute(delete(tier_ladders).where(tier_ladders.c.id == ladder_id))
        self._configuration_changed()

    def has_cards(self, program_id: int) -> bool:
        return unless_unconfigured(self.conn, "cards", program_id, lambda: bool(self.conn.execute(
            select(exists().where(discount_cards.c.program_id == program_id))).scalar()), False)

    def card(self, program_id: int, organization_id: int) -> dict[str, Any] | None:
        c = discount_cards
        return one_row(self.conn, select(c).where(c.c.program_id == program_id, c.c.organization_id == organization_id))

    def save_card(self, program_id: int, organization_id: int, document: dict[str, Any], by: str) -> None:
        values = {"document": document, "updated_by": by, "updated_at": self.clock.now()}
        statement = self._upsert(discount_cards).values(program_id=program_id, organization_id=organization_id,
                                                        **values)
        self.conn.execute(statement.on_conflict_do_update(index_elements=["program_id", "organization_id"],
                                                          set_=values))
        self._configuration_changed()

    # -- running totals -------------------------------------------------------------------------
    def add_measure(self, program_id: int, scope: str, subject: str, organization_id: int, measure: str,
                    day: date, amount: int, count: int) -> None:
        self.conn.execute(measure_upsert(self.conn.dialect.name), {
            "program_id": program_id, "scope": scope, "measure": measure, "subject": subject, "day": day,
            "organization_id": organization_id, "amount": amount, "count": count})

    def add_measures(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(measure_upsert(self.conn.dialect.name), list(rows))

    def sum_measure(self, program_id: int, scope: str, measure: str, subjects: Sequence[str],
                    first: date | None, last: date) -> tuple[int, int]:
        m = tier_measures
        query = select(func.coalesce(func.sum(m.c.amount), 0), func.coalesce(func.sum(m.c.count), 0)).where(
            m.c.program_id == program_id, m.c.scope == scope, m.c.measure == measure, m.c.subject.in_(list(subjects)),
            m.c.day <= last)
        if first is not None:
            query = query.where(m.c.day >= first)
        amount, count = self.conn.execute(query).one()
        return int(amount), int(count)

    def clear_measures(self, program_id: int, scope: str) -> None:
        for table in (tier_measures, tier_participant_marks):
            self.conn.execute(delete(table).where(table.c.program_id == program_id, table.c.scope == scope))

    def add_credit(self, values: dict[str, Any]) -> None:
        self.conn.execute(insert(tier_credits).values(**values, created_at=self.clock.now()))

    def sum_credits(self, program_id: int, organization_ids: Sequence[int], participant_id: int | None,
                    start: datetime | None, end: datetime) -> int:
        c = tier_credits
        query = select(func.coalesce(func.sum(c.c.amount), 0)).where(
            c.c.program_id == program_id, c.c.organization_id.in_(list(organization_ids)), c.c.occurred_at < end)
        if participant_id is not None:
            query = query.where(c.c.participant_id == participant_id)
        if start is not None:
            query = query.where(c.c.occurred_at >= start)
        return int(self.conn.execute(query).scalar_one())

    def mark_participant(self, program_id: int, scope: str, measure: str, participant_id: int,
                         organization_id: int, at: datetime) -> None:
        self.conn.execute(_mark_upsert(self.conn.dialect.name), {
            "program_id": program_id, "scope": scope, "measure": measure, "participant_id": participant_id,
            "organization_id": organization_id, "first_at": at, "last_at": at})

    def mark_participants(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(_mark_upsert(self.conn.dialect.name), list(rows))

    def count_participants(self, program_id: int, organization_ids: Sequence[int], roles: Sequence[str],
                           scope: str | None, measure: str | None, since: datetime | None) -> int:
        p = t.participants
        query = select(func.count()).select_from(p).where(
            p.c.program_id == program_id, p.c.organization_id.in_(list(organization_ids)), p.c.status != "left")
        if roles:
            query = query.where(p.c.role.in_(list(roles)))
        if scope is not None:
            m = tier_participant_marks
            mark = select(m.c.participant_id).where(m.c.program_id == program_id, m.c.scope == scope,
                                                    m.c.measure == measure, m.c.participant_id == p.c.id)
            if since is not None:
                mark = mark.where(m.c.last_at >= since)
            query = query.where(mark.exists())
        return int(self.conn.execute(query).scalar_one())

    def replay_events(self, program_id: int, types: Sequence[str], organization_id: int | None = None,
                      since: datetime | None = None, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
        e = t.events
        after = 0
        while True:
            query = select(e.c.id, e.c.organization_id, e.c.participant_id, e.c.type, e.c.occurred_at,
                           e.c.payload).where(e.c.program_id == program_id, e.c.type.in_(list(types)),
                                              e.c.organization_id.is_not(None), e.c.id > after)
            if organization_id is not None:
                query = query.where(e.c.organization_id == organization_id)
            if since is not None:
                query = query.where(e.c.occurred_at >= since)
            rows = self.conn.execute(query.order_by(e.c.id).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield row[1:]
            after = rows[-1][0]

    # -- the organization tree ----------------------------------------------------------------
    def ancestors(self, program_id: int, organization_id: int) -> list[int]:
        o = t.organizations
        found: list[int] = []
        current: int | None = organization_id
        while current is not None:
            parent = self.conn.execute(select(o.c.parent_id).where(o.c.program_id == program_id,
                                                                   o.c.id == current)).scalar()
            if parent is None or parent in found or parent == organization_id:
                break
            found.append(int(parent))
            current = int(parent)
        return found

    def subtree(self, program_id: int, organization_id: int) -> list[int]:
        o = t.organizations
        seen = [organization_id]
        frontier = [organization_id]
        while frontier:
            children = self.conn.execute(select(o.c.id).where(o.c.program_id == program_id,
                                                              o.c.parent_id.in_(frontier))).scalars().all()
            frontier = [int(c) for c in children if c not in seen]
            seen.extend(frontier)
        return seen

    def organization_ids(self, program_id: int, after: int, limit: int) -> list[int]:
        o = t.organizations
        query = select(o.c.id).where(o.c.program_id == program_id, o.c.id > after, o.c.status != "left")
        return [int(i) for i in self.conn.execute(query.order_by(o.c.id).limit(limit)).scalars()]

    def participant_ids(self, program_id: int, after: int, limit: int) -> list[tuple[int, int]]:
        p = t.participants
        rows = self.conn.execute(select(p.c.id, p.c.organization_id).where(
            p.c.program_id == program_id, p.c.id > after, p.c.status != "left").order_by(p.c.id).limit(limit)).all()
        return [(int(a), int(b)) for a, b in rows]

    def manager(self, program_id: int, organization_id: int) -> dict[str, Any] | None:
        o, u = t.organizations, t.users
        for org in [organization_id, *self.ancestors(program_id, organization_id)]:
            managed = o.join(u, u.c.id == o.c.account_manager_id)
            found = one_row(self.conn, select(u.c.name, u.c.email).select_from(managed)
                            .where(o.c.program_id == program_id, o.c.id == org))
            if found is not None:
                return found
        return None

    # -- status and history -------------------------------------------------------------------
    def status(self, ladder_id: int, subject: str, *, lock: bool = False) -> dict[str, Any] | None:
        s = tier_status
        query = select(s).where(s.c.ladder_id == ladder_id, s.c.subject == subject)
        if lock and self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return one_row(self.conn, query)

    def statuses(self, ladder_id: int, subjects: Sequence[str]) -> list[dict[str, Any]]:
        s = tier_status
        return all_rows(self.conn, select(s).where(s.c.ladder_id == ladder_id, s.c.subject.in_(list(subjects))))

    def insert_status(self, values: dict[str, Any]) -> None:
        """Insert if absent: a concurrent writer that got there first wins (the caller re-reads and locks)."""
        insert_stmt = self._upsert(tier_status).values(**values, updated_at=self.clock.now())
        self.conn.execute(insert_stmt.on_conflict_do_nothing(index_elements=["ladder_id", "subject"]))

    def update_status(self, status_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(tier_status).where(tier_status.c.id == status_id)
                          .values(**values, updated_at=self.clock.now()))

    def insert_history(self, values: dict[str, Any]) -> None:
        self.conn.execute(insert(tier_history).values(**values))

    def history(self, ladder_id: int, subject: str, limit: int) -> list[dict[str, Any]]:
        h = tier_history
        return all_rows(self.conn, select(h).where(h.c.ladder_id == ladder_id, h.c.subject == subject)
                    .order_by(h.c.id.desc()).limit(limit))

    # -- store credit applications ------------------------------------------------------------
    def applied_to(self, program_id: int, organization_id: int, unit: str, reference: str) -> int:
        a = store_credit_applications
        return int(self.conn.execute(select(func.coalesce(func.sum(a.c.amount), 0)).where(
            a.c.program_id == program_id, a.c.organization_id == organization_id, a.c.unit == unit,
            a.c.reference == reference)).scalar_one())

    def insert_application(self, values: dict[str, Any]) -> int:
        a = store_credit_applications
        return int(self.conn.execute(insert(a).values(**values, created_at=self.clock.now())
                                     .returning(a.c.id)).scalar_one())

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
