"""SQL side of referrals (implements ``allegiance.referrals.ports.ReferralsPort``).

Inserts that may race (a code, a referral of the same organization) are ``ON CONFLICT DO NOTHING``
and report whether they wrote; moves are compare-and-set on version and status, so of two
concurrent first orders exactly one converts a referral.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from allegiance.kernel.clock import Clock
from allegiance.storage.cache import caches_of, unless_unconfigured
from allegiance.storage.database import after_commit
from allegiance.storage.outbox import emit
from allegiance.storage.rows import one_row
from allegiance.storage.tables_referrals import referral_codes, referral_settings, referrals
from allegiance.storage.upsert import insert_new_id, save_program_document


class SqlReferrals:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    # -- settings -------------------------------------------------------------------------------
    def settings(self, program_id: int) -> dict[str, Any] | None:
        s = referral_settings
        return unless_unconfigured(self.conn, "referrals", program_id,
                                   lambda: one_row(self.conn, select(s).where(s.c.program_id == program_id)), None)

    def save_settings(self, program_id: int, document: dict[str, Any], by: str) -> None:
        save_program_document(self.conn, referral_settings, program_id, document, by=by, at=self.clock.now())
        after_commit(self.conn, caches_of(self.conn).unconfigured.invalidate)

    # -- codes ------------------------------------------------------------------------------------
    def code_of(self, program_id: int, participant_id: int) -> dict[str, Any] | None:
        c = referral_codes
        return one_row(self.conn, select(c).where(c.c.program_id == program_id, c.c.participant_id == participant_id,
                                               c.c.active.is_(True)).order_by(c.c.id.desc()))

    def code(self, program_id: int, code: str) -> dict[str, Any] | None:
        c = referral_codes
        return one_row(self.conn, select(c).where(c.c.program_id == program_id, c.c.code == code))

    def insert_code(self, values: dict[str, Any]) -> bool:
        return insert_new_id(self.conn, referral_codes, values, ["program_id", "code"]) is not None

    def retire_codes(self, program_id: int, participant_id: int) -> None:
        c = referral_codes
        self.conn.execute(update(c).where(c.c.program_id == program_id, c.c.participant_id == participant_id,
                                          c.c.active.is_(True)).values(active=False))

    def codes(self, program_id: int, *, visible: set[int] | None, participant_id: int | None, after: int,
              limit: int) -> list[dict[str, Any]]:
        c = referral_codes
        query = select(c).where(c.c.program_id == program_id, c.c.id > after)
        if visible is not None:
            query = query.where(c.c.organization_id.in_(sorted(visible)))
        if participant_id is not None:
            query = query.where(c.c.participant_id == participant_id)
        return [dict(r._mapping) for r in self.conn.execute(query.order_by(c.c.id).limit(limit + 1))]

    # -- referrals ----------------------------------------------------------------------------------
    def insert_referral(self, values: dict[str, Any]) -> int | None:
        return insert_new_id(self.conn, referrals, values, ["program_id", "referred_organization_id"])

    def referral(self, program_id: int, referral_id: int) -> dict[str, Any] | None:
        r = referrals
        return one_row(self.conn, select(r).where(r.c.id == referral_id, r.c.program_id == program_id))

    def referral_of(self, program_id: int, organization_id: int) -> dict[str, Any] | None:
        r = referrals
        return one_row(self.conn, select(r).where(r.c.program_id == program_id,
                                               r.c.referred_organization_id == organization_id))

    def waiting_among(self, program_id: int, organization_ids: Collection[int]) -> set[int]:
        r, wanted = referrals, sorted(set(organization_ids))
        found: set[int] = set()
        for start in range(0, len(wanted), 500):
            found.update(int(i) for i in self.conn.execute(select(r.c.referred_organization_id).where(
                r.c.program_id == program_id, r.c.status == "registered",
                r.c.referred_organization_id.in_(wanted[start:start + 500]))).scalars())
        return found

    def count_since(self, program_id: int, since: datetime, *, code_id: int | None = None,
                    source: str | None = None) -> int:
        r = referrals
        query = select(func.count()).where(r.c.program_id == program_id, r.c.created_at >= since)
        if code_id is not None:
            query = query.where(r.c.code_id == code_id)
        if source is not None:
            query = query.where(r.c.source == source)
        return int(self.conn.execute(query).scalar_one())

    def referrals(self, program_id: int, *, visible: set[int] | None, participant_id: int | None, after: int,
                  limit: int, status: str | None = None) -> list[dict[str, Any]]:
        r = referrals
        query = select(r).where(r.c.program_id == program_id, r.c.id > after)
        if visible is not None:
            query = query.where(r.c.referrer_organization_id.in_(sorted(visible)))
        if participant_id is not None:
            query = query.where(r.c.referrer_participant_id == participant_id)
        if status is not None:
            query = query.where(r.c.status == status)
        return [dict(row._mapping) for row in self.conn.execute(query.order_by(r.c.id).limit(limit + 1))]

    def move(self, referral_id: int, version: int, status_from: str, values: dict[str, Any]) -> bool:
        r = referrals
        done = self.conn.execute(update(r).where(r.c.id == referral_id, r.c.version == version,
                                                 r.c.status == status_from)
                                 .values(**values, version=version + 1)).rowcount
        return bool(done == 1)

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
