"""SQL side of co-op funds (implements ``allegiance.coop.ports.CoopPort``).

The yearly budget counter is changed only by one conditional UPDATE whose WHERE clause is the
check; claim and plan moves are compare-and-set on ``version`` (PostgreSQL re-evaluates the WHERE
after waiting for a competing writer, so the second one changes nothing). A duplicate invoice is
an ``INSERT … ON CONFLICT DO NOTHING`` that returns no id: two racing submissions never abort a
transaction, one simply finds the other's row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from allegiance.kernel.clock import Clock
from allegiance.storage.outbox import emit
from allegiance.storage.rows import all_rows, one_row
from allegiance.storage.tables_coop import (
    coop_budget_usage,
    coop_claim_history,
    coop_claims,
    coop_plans,
    coop_proofs,
    coop_settings,
)
from allegiance.storage.upsert import insert_ignore, insert_new_id, save_program_document

PROOF_META = [c for c in coop_proofs.c if c.name != "content"]


class SqlCoop:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    # -- settings -------------------------------------------------------------------------------
    def settings(self, program_id: int) -> dict[str, Any] | None:
        s = coop_settings
        return one_row(self.conn, select(s).where(s.c.program_id == program_id))

    def save_settings(self, program_id: int, document: dict[str, Any], by: str) -> None:
        save_program_document(self.conn, coop_settings, program_id, document, by=by, at=self.clock.now())

    # -- claims ---------------------------------------------------------------------------------
    def insert_claim(self, values: dict[str, Any]) -> int | None:
        return insert_new_id(self.conn, coop_claims, values, ["program_id", "organization_id", "invoice_key"])

    def claim(self, program_id: int, claim_id: int) -> dict[str, Any] | None:
        c = coop_claims
        return one_row(self.conn, select(c).where(c.c.id == claim_id, c.c.program_id == program_id))

    def claim_by_invoice(self, program_id: int, organization_id: int, invoice_key: str) -> dict[str, Any] | None:
        c = coop_claims
        return one_row(self.conn, select(c).where(c.c.program_id == program_id, c.c.organization_id == organization_id,
                                               c.c.invoice_key == invoice_key))

    def claims(self, program_id: int, *, visible: set[int] | None, after: int = 0, limit: int = 50,
               status: str | None = None, organization_id: int | None = None) -> list[dict[str, Any]]:
        c = coop_claims
        query = select(c).where(c.c.program_id == program_id, c.c.id > after)
        if visible is not None:
            query = query.where(c.c.organization_id.in_(sorted(visible)))
        if status is not None:
            query = query.where(c.c.status == status)
        if organization_id is not None:
            query = query.where(c.c.organization_id == organization_id)
        return all_rows(self.conn, query.order_by(c.c.id).limit(limit + 1))

    def move_claim(self, claim_id: int, version: int, values: dict[str, Any]) -> bool:
        c = coop_claims
        done = self.conn.execute(update(c).where(c.c.id == claim_id, c.c.version == version)
                                 .values(**values, version=version + 1)).rowcount
        return bool(done == 1)

    def add_history(self, values: dict[str, Any]) -> None:
        self.conn.execute(insert(coop_claim_history).values(**values))

    def history(self, claim_id: int) -> list[dict[str, Any]]:
        h = coop_claim_history
        return all_rows(self.conn, select(h.c.from_status, h.c.to_status, h.c.actor, h.c.note, h.c.at)
                    .where(h.c.claim_id == claim_id).order_by(h.c.id))

    # -- yearly budget ---------------------------------------------------------------------------
    def add_budget(self, program_id: int, organization_id: int, year: int, amount: int, budget: int | None) -> bool:
        b = coop_budget_usage
        insert_ignore(self.conn, b, {"program_id": program_id, "organization_id": organization_id, "year": year,
                                     "used": 0}, ["program_id", "organization_id", "year"])
        query = update(b).where(b.c.program_id == program_id, b.c.organization_id == organization_id,
                                b.c.year == year)
        if budget is not None:
            query = query.where(b.c.used + amount <= budget)
        return bool(self.conn.execute(query.values(used=b.c.used + amount)).rowcount == 1)

    def remove_budget(self, program_id: int, organization_id: int, year: int, amount: int) -> None:
        b = coop_budget_usage
        self.conn.execute(update(b).where(b.c.program_id == program_id, b.c.organization_id == organization_id,
                                          b.c.year == year).values(used=b.c.used - amount))

    def budget_used(self, program_id: int, organization_id: int, year: int) -> int:
        b = coop_budget_usage
        value = self.conn.execute(select(b.c.used).where(b.c.program_id == program_id,
                                                         b.c.organization_id == organization_id,
                                                         b.c.year == year)).scalar()
        return int(value or 0)

    # -- proofs ------------------------------------------------------------------------------------
    def insert_proof(self, values: dict[str, Any]) -> int | None:
        return insert_new_id(self.conn, coop_proofs, values, ["claim_id", "sha256"])

    def proofs(self, claim_id: int) -> list[dict[str, Any]]:
        p = coop_proofs
        return all_rows(self.conn, select(*PROOF_META).where(p.c.claim_id == claim_id).order_by(p.c.id))

    def proof_count(self, claim_id: int) -> int:
        p = coop_proofs
        return int(self.conn.execute(select(func.count()).where(p.c.claim_id == claim_id)).scalar_one())

    def proof(self, claim_id: int, proof_id: int) -> dict[str, Any] | None:
        p = coop_proofs
        return one_row(self.conn, select(p).where(p.c.claim_id == claim_id, p.c.id == proof_id))

    def proof_by_hash(self, claim_id: int, sha256: str) -> dict[str, Any] | None:
        p = coop_proofs
        return one_row(self.conn, select(*PROOF_META).where(p.c.claim_id == claim_id, p.c.sha256 == sha256))

    # -- plans ---------------------------------------------------------------------------------------
    def insert_plan(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(coop_plans).values(**values).returning(coop_plans.c.id)).scalar_one())

    def plan(self, program_id: int, plan_id: int) -> dict[str, Any] | None:
        p = coop_plans
        return one_row(self.conn, select(p).where(p.c.id == plan_id, p.c.program_id == program_id))

    def plans(self, program_id: int, *, visible: set[int] | None, after: int = 0, limit: int = 50,
              status: str | None = None) -> list[dict[str, Any]]:
        p = coop_plans
        query = select(p).where(p.c.program_id == program_id, p.c.id > after)
        if visible is not None:
            query = query.where(p.c.organization_id.in_(sorted(visible)))
        if status is not None:
            query = query.where(p.c.status == status)
        return all_rows(self.conn, query.order_by(p.c.id).limit(limit + 1))

    def move_plan(self, plan_id: int, version: int, values: dict[str, Any]) -> bool:
        p = coop_plans
        done = self.conn.execute(update(p).where(p.c.id == plan_id, p.c.version == version)
                                 .values(**values, version=version + 1)).rowcount
        return bool(done == 1)

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
