"""SQL side of rewards (implements ``allegiance.rewards.ports.RewardsPort``).

Every counter a concurrent request could push past its limit is changed by one conditional
UPDATE whose WHERE clause *is* the check (stock, annual gift totals), and every state change of a
redemption or concierge request is a compare-and-set on its ``version``: PostgreSQL re-evaluates
the WHERE clause after waiting for a competing writer's row lock, so the second writer sees the
new version and changes nothing; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, cast, func, insert, or_, select, update

from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit
from allegiance.storage.rows import all_rows, one_row
from allegiance.storage.tables_rewards import (
    concierge_requests,
    donations,
    gift_totals,
    redemption_history,
    redemptions,
    reward_items,
    reward_policies,
)
from allegiance.storage.upsert import insert_ignore


class SqlRewards:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    # -- catalog -------------------------------------------------------------------------------
    def insert_item(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(reward_items).values(**values).returning(reward_items.c.id)).scalar_one())

    def item(self, program_id: int, item_id: int) -> dict[str, Any] | None:
        i = reward_items
        return one_row(self.conn, select(i).where(i.c.id == item_id, i.c.program_id == program_id))

    def item_by_code(self, program_id: int, code: str) -> dict[str, Any] | None:
        i = reward_items
        return one_row(self.conn, select(i).where(i.c.code == code, i.c.program_id == program_id))

    def update_item(self, item_id: int, values: dict[str, Any]) -> None:
        self.conn.execute(update(reward_items).where(reward_items.c.id == item_id).values(**values))

    def items(self, program_id: int, *, after: int = 0, limit: int = 50, active: bool | None = None,
              category: str | None = None, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        i = reward_items
        query = select(i).where(i.c.program_id == program_id, i.c.id > after)
        if active is not None:
            query = query.where(i.c.active == active)
        if category is not None:
            query = query.where(i.c.category == category)
        if ids is not None:
            query = query.where(i.c.id.in_(list(ids)))
        return all_rows(self.conn, query.order_by(i.c.id).limit(limit + 1))

    def take_stock(self, item_id: int, quantity: int) -> bool:
        """Reserve ``quantity`` items; False when fewer are left. Unlimited items (NULL) never fail."""
        i = reward_items
        done = self.conn.execute(update(i).where(i.c.id == item_id, i.c.stock.is_not(None), i.c.stock >= quantity)
                                 .values(stock=i.c.stock - quantity)).rowcount
        if done == 1:
            return True
        unlimited = self.conn.execute(select(i.c.stock.is_(None)).where(i.c.id == item_id)).scalar()
        return bool(unlimited)

    def return_stock(self, item_id: int, quantity: int) -> None:
        i = reward_items
        self.conn.execute(update(i).where(i.c.id == item_id, i.c.stock.is_not(None))
                          .values(stock=i.c.stock + quantity))

    # -- policies --------------------------------------------------------------------------------
    def policy(self, program_id: int, scope: str) -> dict[str, Any] | None:
        p = reward_policies
        return one_row(self.conn, select(p).where(p.c.program_id == program_id, p.c.scope == scope))

    def save_policy(self, program_id: int, scope: str, organization_id: int | None, document: dict[str, Any],
                    by: str) -> None:
        p = reward_policies
        now = self.clock.now()
        insert_ignore(self.conn, p, {"program_id": program_id, "scope": scope, "organization_id": organization_id,
                                     "document": document, "updated_by": by, "updated_at": now},
                      ["program_id", "scope"])
        self.conn.execute(update(p).where(p.c.program_id == program_id, p.c.scope == scope)
                          .values(document=document, updated_by=by, updated_at=now))

    # -- annual gift totals ------------------------------------------------------------------------
    def add_gift(self, program_id: int, participant_id: int, year: int, unit: str, amount: int,
                 cap: int | None) -> bool:
        """Count ``amount`` against the person's year; False (and nothing counted) past ``cap``."""
        g = gift_totals
        insert_ignore(self.conn, g, {"program_id": program_id, "participant_id": participant_id, "year": year,
                                     "unit": unit, "amount": 0}, ["program_id", "participant_id", "year", "unit"])
        query = update(g).where(g.c.program_id == program_id, g.c.participant_id == participant_id,
                                g.c.year == year, g.c.unit == unit)
        if cap is not None:
            query = query.where(g.c.amount + amount <= cap)
        return bool(self.conn.execute(query.values(amount=g.c.amount + amount)).rowcount == 1)

    def remove_gift(self, program_id: int, participant_id: int, year: int, unit: str, amount: int) -> None:
        g = gift_totals
        self.conn.execute(update(g).where(g.c.program_id == program_id, g.c.participant_id == participant_id,
                                          g.c.year == year, g.c.unit == unit).values(amount=g.c.amount - amount))

    def gift_total(self, program_id: int, participant_id: int, year: int, unit: str) -> int:
        g = gift_totals
        value = self.conn.execute(select(g.c.amount).where(
            g.c.program_id == program_id, g.c.participant_id == participant_id, g.c.year == year,
            g.c.unit == unit)).scalar()
        return int(value or 0)

    # -- redemptions -------------------------------------------------------------------------------
    def insert_redemption(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(redemptions).values(**values).returning(redemptions.c.id)).scalar_one())

    def redemption(self, program_id: int, redemption_id: int) -> dict[str, Any] | None:
        r = redemptions
        return one_row(self.conn, select(r).where(r.c.id == redemption_id, r.c.program_id == program_id))

    def move_redemption(self, redemption_id: int, version: int, values: dict[str, Any]) -> bool:
        """Compare-and-set: applies only if nobody changed the redemption since ``version`` was read."""
        r = redemptions
        done = self.conn.execute(update(r).where(r.c.id == redemption_id, r.c.version == version)
                                 .values(**values, version=version + 1)).rowcount
        return bool(done == 1)

    def add_history(self, values: dict[str, Any]) -> None:
        self.conn.execute(insert(redemption_history).values(**values))

    def history(self, redemption_id: int) -> list[dict[str, Any]]:
        h = redemption_history
        return all_rows(self.conn, select(h.c.from_status, h.c.to_status, h.c.actor, h.c.note, h.c.at)
                    .where(h.c.redemption_id == redemption_id).order_by(h.c.id))

    def redemptions(self, program_id: int, *, visible: set[int] | None, participant_id: int | None = None,
                    after: int = 0, limit: int = 50, status: str | None = None,
                    organization_id: int | None = None) -> list[dict[str, Any]]:
        """``visible``: organizations in reach (None = all); ``participant_id``: only those the person
        asked for or receives."""
        r = redemptions
        query = select(r).where(r.c.program_id == program_id, r.c.id > after)
        if visible is not None:
            query = query.where(r.c.organization_id.in_(sorted(visible)))
        if participant_id is not None:
            query = query.where(or_(r.c.participant_id == participant_id,
                                    r.c.recipient_participant_id == participant_id))
        if status is not None:
            query = query.where(r.c.status == status)
        if organization_id is not None:
            query = query.where(r.c.organization_id == organization_id)
        return all_rows(self.conn, query.order_by(r.c.id).limit(limit + 1))

    def due_redemptions(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        r = redemptions
        return all_rows(self.conn, select(r.c.program_id, r.c.id).where(
            r.c.status.in_(["pending_approval", "approved"]), r.c.expires_at <= now).order_by(r.c.id).limit(limit))

    def gift_register(self, program_id: int, year: int, visible: set[int] | None) -> list[dict[str, Any]]:
        """Per recipient and unit: what counts against the cap (not cancelled/rejected/expired) and what
        was delivered, for one calendar year."""
        r, p, o = redemptions, t.participants, t.organizations
        live = r.c.status.in_(["pending_approval", "approved", "fulfilled"])
        delivered = r.c.status == "fulfilled"
        zero = cast(func.coalesce(func.sum(r.c.cost).filter(live), 0), BigInteger)
        query = (select(r.c.cap_participant_id.label("participant_id"), p.c.name.label("participant_name"),
                        p.c.external_id.label("participant_external_id"), r.c.organization_id,
                        o.c.name.label("organization_name"), r.c.unit,
                        func.count().filter(live).label("gifts"), zero.label("committed"),
                        cast(func.coalesce(func.sum(r.c.cost).filter(delivered), 0), BigInteger).label("delivered"))
                 .join(p, p.c.id == r.c.cap_participant_id).join(o, o.c.id == r.c.organization_id)
                 .where(r.c.program_id == program_id, r.c.year == year, r.c.cap_participant_id.is_not(None))
                 .group_by(r.c.cap_participant_id, p.c.name, p.c.external_id, r.c.organization_id, o.c.name,
                           r.c.unit)
                 .order_by(r.c.cap_participant_id, r.c.unit))
        if visible is not None:
            query = query.where(r.c.organization_id.in_(sorted(visible)))
        return all_rows(self.conn, query)

    # -- donations ------------------------------------------------------------------------------
    def insert_donation(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(donations).values(**values).returning(donations.c.id)).scalar_one())

    def set_receipt(self, donation_id: int, receipt_number: str) -> None:
        self.conn.execute(update(donations).where(donations.c.id == donation_id)
                          .values(receipt_number=receipt_number))

    def donation_for(self, redemption_id: int) -> dict[str, Any] | None:
        return one_row(self.conn, select(donations).where(donations.c.redemption_id == redemption_id))

    def donations(self, program_id: int, *, visible: set[int] | None, after: int = 0, limit: int = 50,
                  organization_id: int | None = None) -> list[dict[str, Any]]:
        d = donations
        query = select(d).where(d.c.program_id == program_id, d.c.id > after)
        if visible is not None:
            query = query.where(d.c.organization_id.in_(sorted(visible)))
        if organization_id is not None:
            query = query.where(d.c.organization_id == organization_id)
        return all_rows(self.conn, query.order_by(d.c.id).limit(limit + 1))

    def donation_statement(self, program_id: int, *, visible: set[int] | None,
                           organization_id: int | None = None) -> list[dict[str, Any]]:
        d, i = donations, reward_items
        query = (select(d.c.organization_id, d.c.item_id.label("cause_id"), i.c.code.label("cause_code"),
                        d.c.unit, cast(func.sum(d.c.points), BigInteger).label("points"),
                        d.c.currency, cast(func.sum(d.c.value), BigInteger).label("value"),
                        func.count().label("donations"))
                 .join(i, i.c.id == d.c.item_id)
                 .where(d.c.program_id == program_id)
                 .group_by(d.c.organization_id, d.c.item_id, i.c.code, d.c.unit, d.c.currency)
                 .order_by(d.c.organization_id, d.c.item_id))
        if visible is not None:
            query = query.where(d.c.organization_id.in_(sorted(visible)))
        if organization_id is not None:
            query = query.where(d.c.organization_id == organization_id)
        return all_rows(self.conn, query)

    # -- concierge --------------------------------------------------------------------------------
    def insert_concierge(self, values: dict[str, Any]) -> int:
        c = concierge_requests
        return int(self.conn.execute(insert(c).values(**values).returning(c.c.id)).scalar_one())

    def concierge(self, program_id: int, request_id: int) -> dict[str, Any] | None:
        c = concierge_requests
        return one_row(self.conn, select(c).where(c.c.id == request_id, c.c.program_id == program_id))

    def move_concierge(self, request_id: int, version: int, values: dict[str, Any]) -> bool:
        c = concierge_requests
        done = self.conn.execute(update(c).where(c.c.id == request_id, c.c.version == version)
                                 .values(**values, version=version + 1)).rowcount
        return bool(done == 1)

    def concierge_requests(self, program_id: int, *, visible: set[int] | None, participant_id: int | None = None,
                           after: int = 0, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        c = concierge_requests
        query = select(c).where(c.c.program_id == program_id, c.c.id > after)
        if visible is not None:
            query = query.where(c.c.organization_id.in_(sorted(visible)))
        if participant_id is not None:
            query = query.where(c.c.participant_id == participant_id)
        if status is not None:
            query = query.where(c.c.status == status)
        return all_rows(self.conn, query.order_by(c.c.id).limit(limit + 1))

    def due_quotes(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        c = concierge_requests
        return all_rows(self.conn, select(c.c.program_id, c.c.id).where(
            and_(c.c.status == "quoted", c.c.quote_expires_at <= now)).order_by(c.c.id).limit(limit))

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
