"""SQL side of coalition partners (implements ``allegiance.partners.ports.PartnersPort``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.orm import aliased

from allegiance.kernel.clock import Clock
from allegiance.ledger.model import AccountKind, TransactionKind
from allegiance.partners.model import settlement_address
from allegiance.partners.settlement import SettlementPosting
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit
from allegiance.storage.tables_partners import partner_keys, partner_operations, partners
from allegiance.storage.upsert import insert_ignore

STREAM_ROWS = 1_000


class SqlPartners:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    # -- partners ------------------------------------------------------------------------------
    def partner(self, program_id: int, partner_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(select(partners).where(partners.c.program_id == program_id,
                                                       partners.c.id == partner_id)).first()
        return dict(row._mapping) if row else None

    def partner_by_code(self, program_id: int, code: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(partners).where(partners.c.program_id == program_id,
                                                       partners.c.code == code)).first()
        return dict(row._mapping) if row else None

    def partners(self, program_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(partners).where(partners.c.program_id == program_id, partners.c.id > after)
                                 .order_by(partners.c.id).limit(limit + 1))
        return [dict(r._mapping) for r in rows]

    def insert_partner(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(partners).values(**values).returning(partners.c.id)).scalar_one())

    def update_partner(self, partner_id: int, changes: dict[str, Any]) -> None:
        self.conn.execute(update(partners).where(partners.c.id == partner_id).values(**changes))

    def settlement_account(self, program_id: int, partner_id: int, unit: str) -> int:
        """A program-side (non-holder) account: no cached balance, counted in shards like ``issued``."""
        address = settlement_address(partner_id, unit)
        query = select(t.accounts.c.id).where(t.accounts.c.program_id == program_id, t.accounts.c.address == address)
        found = self.conn.execute(query).scalar()
        if found is None:
            insert_ignore(self.conn, t.accounts, {
                "program_id": program_id, "address": address, "unit": unit, "kind": AccountKind.PARTNER.value,
                "organization_id": None, "participant_id": None, "balance": None, "version": 0,
                "created_at": self.clock.now()}, ["program_id", "address"])
            found = self.conn.execute(query).scalar_one()
        return int(found)

    # -- keys ------------------------------------------------------------------------------------
    def bind_key(self, program_id: int, partner_id: int, api_key_id: int) -> None:
        self.conn.execute(insert(partner_keys).values(api_key_id=api_key_id, program_id=program_id,
                                                      partner_id=partner_id, created_at=self.clock.now()))

    def partner_of_key(self, program_id: int, api_key_id: int) -> int | None:
        return self.conn.execute(select(partner_keys.c.partner_id).where(
            partner_keys.c.program_id == program_id, partner_keys.c.api_key_id == api_key_id)).scalar()

    # -- operations --------------------------------------------------------------------------------
    def claim_operation(self, values: dict[str, Any]) -> dict[str, Any]:
        """INSERT … ON CONFLICT DO NOTHING, then read: on PostgreSQL a concurrent claimer of the same
        reference waits for the first to commit (and then sees it completed) or roll back (and then wins)."""
        insert_ignore(self.conn, partner_operations, values, ["partner_id", "operation", "reference"])
        row = self.conn.execute(select(partner_operations).where(
            partner_operations.c.partner_id == values["partner_id"],
            partner_operations.c.operation == values["operation"],
            partner_operations.c.reference == values["reference"])).one()
        return dict(row._mapping)

    def complete_operation(self, operation_id: int, transaction_id: int) -> None:
        self.conn.execute(update(partner_operations).where(partner_operations.c.id == operation_id)
                          .values(transaction_id=transaction_id))

    def operation(self, program_id: int, partner_id: int, operation_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(select(partner_operations).where(
            partner_operations.c.program_id == program_id, partner_operations.c.partner_id == partner_id,
            partner_operations.c.id == operation_id, partner_operations.c.transaction_id.is_not(None))).first()
        return dict(row._mapping) if row else None

    def operations(self, program_id: int, partner_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
        op = partner_operations
        rows = self.conn.execute(select(op).where(op.c.program_id == program_id, op.c.partner_id == partner_id,
                                                  op.c.id > after, op.c.transaction_id.is_not(None))
                                 .order_by(op.c.id).limit(limit + 1))
        return [dict(r._mapping) for r in rows]

    def mark_reversed(self, operation_id: int, transaction_id: int, now: datetime) -> bool:
        done = self.conn.execute(
            update(partner_operations).where(partner_operations.c.id == operation_id,
                                             partner_operations.c.reversal_transaction_id.is_(None))
            .values(reversal_transaction_id=transaction_id, reversed_at=now)).rowcount
        return done == 1

    # -- settlement (read from the ledger) ----------------------------------------------------------
    def settlement_postings(self, account_id: int, start: datetime, end: datetime) -> Iterator[SettlementPosting]:
        p, tx = t.postings, t.transactions
        original = aliased(tx)
        query = (
            select(p.c.transaction_id, p.c.amount, tx.c.kind, tx.c.metadata, original.c.metadata.label("original"))
            .join(tx, tx.c.id == p.c.transaction_id)
            .outerjoin(original, original.c.id == tx.c.reverses_id)
            .where(p.c.account_id == account_id, tx.c.created_at >= start, tx.c.created_at < end)
            .order_by(p.c.id)
        )
        for row in self.conn.execute(query.execution_options(yield_per=STREAM_ROWS)):
            reversal = row.kind == TransactionKind.REVERSAL.value
            yield SettlementPosting(row.transaction_id, row.amount, reversal,
                                    (row.original if reversal else row.metadata) or {})

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
