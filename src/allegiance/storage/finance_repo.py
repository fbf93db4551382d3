"""SQL side of finance (implements ``allegiance.finance.ports.FinancePort``): reads the ledger.

Dates are bucketed in Python (not with dialect-specific SQL), so every query runs the same on
SQLite and PostgreSQL; the big reads (cohort flows, expiring lots, export) stream.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from allegiance.finance.breakage import CohortFlow
from allegiance.finance.model import Balances, ExpiringLot
from allegiance.kernel.clock import Clock
from allegiance.ledger.model import AccountKind
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit
from allegiance.storage.tables_partners import expiry_notices, partners

STREAM_ROWS = 2_000
SPENDABLE = [AccountKind.POOL.value, AccountKind.PERSONAL.value]
HOLDERS = [*SPENDABLE, AccountKind.HELD.value]


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _balances(rows: list[Any]) -> list[Balances]:
    """(unit, kind, total, count) rows → one ``Balances`` per unit."""
    available: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for unit, kind, total, accounts in rows:
        (held if kind == AccountKind.HELD.value else available)[unit] += int(total or 0)
        count[unit] += int(accounts)
    return [Balances(unit, available[unit], held[unit], count[unit]) for unit in sorted(count)]


class SqlFinance:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    # -- liability ---------------------------------------------------------------------------------
    def unit_balances(self, program_id: int) -> list[Balances]:
        a = t.accounts
        rows = self.conn.execute(select(a.c.unit, a.c.kind, func.sum(a.c.balance), func.count())
                                 .where(a.c.program_id == program_id, a.c.kind.in_(HOLDERS))
                                 .group_by(a.c.unit, a.c.kind)).all()
        return _balances(list(rows))

    def organization_balances(self, program_id: int, *, after: int, limit: int,
                              organization_id: int | None = None) -> list[tuple[int, list[Balances]]]:
        o, a = t.organizations, t.accounts
        query = select(o.c.id).where(o.c.program_id == program_id, o.c.id > after)
        if organization_id is not None:
            query = query.where(o.c.id == organization_id)
        ids = list(self.conn.execute(query.order_by(o.c.id).limit(limit + 1)).scalars())
        if not ids:
            return []
        rows = self.conn.execute(select(a.c.organization_id, a.c.unit, a.c.kind, func.sum(a.c.balance), func.count())
                                 .where(a.c.program_id == program_id, a.c.organization_id.in_(ids),
                                        a.c.kind.in_(HOLDERS))
                                 .group_by(a.c.organization_id, a.c.unit, a.c.kind)).all()
        per_org: dict[int, list[Any]] = defaultdict(list)
        for org_id, unit, kind, total, accounts in rows:
            per_org[org_id].append((unit, kind, total, accounts))
        return [(org_id, _balances(per_org[org_id])) for org_id in ids]

    def partner_positions(self, program_id: int) -> list[dict[str, Any]]:
        shards = t.account_balance_shards
        total = (select(func.coalesce(func.sum(shards.c.amount), 0)).where(shards.c.account_id == partners.c.account_id)
                 .scalar_subquery())
        rows = self.conn.execute(select(partners.c.id, partners.c.code, partners.c.name, partners.c.unit,
                                        partners.c.account_id, total.label("balance"))
                                 .where(partners.c.program_id == program_id).order_by(partners.c.id))
        return [{**dict(r._mapping), "balance": int(r.balance)} for r in rows]

    # -- breakage --------------------------------------------------------------------------------
    def _flows(self, program_id: int, as_of: datetime, *, debits: bool) -> Iterator[CohortFlow]:
        lots, p, tx, alloc, a = t.lots, t.postings, t.transactions, t.lot_allocations, t.accounts
        original = aliased(tx)
        amount = func.sum(alloc.c.amount if debits else lots.c.amount)
        query = select(a.c.unit, lots.c.expires_at, tx.c.kind, original.c.kind.label("original_kind"), amount)
        if debits:
            query = query.select_from(alloc).join(lots, lots.c.id == alloc.c.lot_id) \
                .join(p, p.c.id == alloc.c.posting_id)
        else:
            query = query.select_from(lots).join(p, p.c.id == lots.c.posting_id)
        query = (query.join(tx, tx.c.id == p.c.transaction_id).join(a, a.c.id == lots.c.account_id)
                 .outerjoin(original, original.c.id == tx.c.reverses_id)
                 .where(lots.c.program_id == program_id, lots.c.expires_at.is_not(None), lots.c.expires_at <= as_of)
                 .group_by(a.c.unit, lots.c.expires_at, tx.c.kind, original.c.kind))
        for unit, expires_at, kind, original_kind, total in self.conn.execute(
                query.execution_options(yield_per=STREAM_ROWS)):
            total = int(total)
            yield CohortFlow(unit, _day(expires_at), kind, original_kind, 0 if debits else total,
                             total if debits else 0)

    def cohort_flows(self, program_id: int, as_of: datetime) -> Iterator[CohortFlow]:
        yield from list(self._flows(program_id, as_of, debits=False))
        yield from list(self._flows(program_id, as_of, debits=True))

    def cohort_remaining(self, program_id: int, as_of: datetime) -> dict[tuple[str, date], int]:
        lots, a = t.lots, t.accounts
        rows = self.conn.execute(select(a.c.unit, lots.c.expires_at, func.sum(lots.c.remaining))
                                 .join(a, a.c.id == lots.c.account_id)
                                 .where(lots.c.program_id == program_id, lots.c.expires_at.is_not(None),
                                        lots.c.expires_at <= as_of)
                                 .group_by(a.c.unit, lots.c.expires_at))
        remaining: dict[tuple[str, date], int] = defaultdict(int)
        for unit, expires_at, total in rows:
            remaining[(unit, _day(expires_at))] += int(total)
        return dict(remaining)

    def expirable_outstanding(self, program_id: int) -> dict[str, int]:
        lots, a = t.lots, t.accounts
        rows = self.conn.execute(select(a.c.unit, func.sum(lots.c.remaining)).join(a, a.c.id == lots.c.account_id)
                                 .where(lots.c.program_id == program_id, lots.c.expires_at.is_not(None),
                                        lots.c.remaining > 0)
                                 .group_by(a.c.unit))
        return {unit: int(total) for unit, total in rows}

    # -- expiring soon -------------------------------------------------------------------------------
    def expiring_lots(self, program_id: int, after: datetime, until: datetime) -> Iterator[ExpiringLot]:
        lots, a = t.lots, t.accounts
        query = (select(a.c.organization_id, a.c.participant_id, a.c.id, a.c.unit, lots.c.expires_at,
                        func.sum(lots.c.remaining))
                 .join(a, a.c.id == lots.c.account_id)
                 .where(lots.c.program_id == program_id, a.c.kind.in_(SPENDABLE), lots.c.remaining > 0,
                        lots.c.expires_at > after, lots.c.expires_at <= until)
                 .group_by(a.c.organization_id, a.c.participant_id, a.c.id, a.c.unit, lots.c.expires_at))
        rows = self.conn.execute(query).all()
        for org_id, person, account_id, unit, expires_at, total in rows:
            yield ExpiringLot(org_id, person, account_id, unit, _day(expires_at), int(total))

    def claim_notice(self, program_id: int, organization_id: int, unit: str, expires_on: date, amount: int) -> bool:
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        statement = insert(expiry_notices).values(
            program_id=program_id, organization_id=organization_id, unit=unit, expires_on=expires_on, amount=amount,
            created_at=self.clock.now()).on_conflict_do_nothing(
            index_elements=["program_id", "organization_id", "unit", "expires_on"]).returning(expiry_notices.c.id)
        return self.conn.execute(statement).first() is not None  # no row back: someone announced it before

    # -- export ------------------------------------------------------------------------------------
    def export_postings(self, program_id: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        p, tx, a = t.postings, t.transactions, t.accounts
        query = (select(tx.c.id.label("transaction_id"), tx.c.chain_seq, tx.c.created_at, tx.c.kind, tx.c.memo,
                        tx.c.metadata, tx.c.reverses_id, tx.c.event_id, tx.c.hash, p.c.id.label("posting_id"),
                        p.c.account_id, a.c.address, a.c.kind.label("account_kind"), a.c.organization_id,
                        a.c.participant_id, p.c.unit, p.c.amount)
                 .join(tx, tx.c.id == p.c.transaction_id).join(a, a.c.id == p.c.account_id)
                 .where(tx.c.program_id == program_id, tx.c.created_at >= start, tx.c.created_at < end)
                 .order_by(tx.c.id, p.c.id))
        for row in self.conn.execute(query.execution_options(yield_per=STREAM_ROWS)):
            values = dict(row._mapping)
            metadata = values.pop("metadata") or {}
            values["rule"] = metadata.get("rule")
            values["rule_set_version"] = metadata.get("rule_set_version")
            values["partner_code"] = metadata.get("partner_code")
            yield values

    def export_totals(self, program_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
        p, tx, a = t.postings, t.transactions, t.accounts
        before = func.sum(case((tx.c.created_at < start, p.c.amount), else_=0))
        during = func.sum(case((tx.c.created_at >= start, p.c.amount), else_=0))
        rows = self.conn.execute(
            select(p.c.account_id, a.c.address, a.c.kind.label("account_kind"), a.c.organization_id,
                   a.c.participant_id, a.c.unit, before.label("opening"), during.label("movement"),
                   func.count().label("postings_total"))
            .join(tx, tx.c.id == p.c.transaction_id).join(a, a.c.id == p.c.account_id)
            .where(tx.c.program_id == program_id, tx.c.created_at < end)
            .group_by(p.c.account_id, a.c.address, a.c.kind, a.c.organization_id, a.c.participant_id, a.c.unit)
            .order_by(p.c.account_id))
        out = []
        for row in rows:
            values = dict(row._mapping)
            values.pop("postings_total")
            values["opening"], values["movement"] = int(values["opening"]), int(values["movement"])
            values["closing"] = values["opening"] + values["movement"]
            out.append(values)
        return out

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
