"""Read queries the operator pages need beyond :mod:`allegiance.storage.queries`.

Each one is a single statement (or two, for rows plus their legs) whatever the number of rows, so a
page's query count stays bounded: pages list newest first, hence the ``before`` cursors here where
the API's lists page oldest first with ``after``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, or_, select

from allegiance.storage import tables as t


def programs(conn: Connection) -> list[dict[str, Any]]:
    """Every program, oldest first: operator users are staff of the operator and see them all."""
    p = t.programs
    rows = conn.execute(select(p.c.id, p.c.slug, p.c.name, p.c.settings).order_by(p.c.id))
    return [dict(r._mapping) for r in rows]


def ancestors(conn: Connection, program_id: int, organization_id: int) -> list[dict[str, Any]]:
    """The parent chain of an organization, root first, in one recursive query (bounded depth)."""
    o = t.organizations
    chain = (select(o.c.id, o.c.name, o.c.parent_id, literal(0).label("depth"))
             .where(o.c.program_id == program_id, o.c.id == organization_id).cte("chain", recursive=True))
    below, parent = chain.alias("below"), o.alias("parent")
    chain = chain.union_all(
        select(parent.c.id, parent.c.name, parent.c.parent_id, (below.c.depth + 1).label("depth"))
        .where(parent.c.id == below.c.parent_id, parent.c.program_id == program_id, below.c.depth < 64))
    rows = conn.execute(select(chain.c.id, chain.c.name).where(chain.c.depth > 0).order_by(chain.c.depth.desc()))
    return [dict(r._mapping) for r in rows]


def pool_balances(conn: Connection, program_id: int, organization_ids: Collection[int], unit: str) -> dict[int, int]:
    """Pool balance per organization in one unit, for a list page (one query for all rows)."""
    if not organization_ids:
        return {}
    a = t.accounts
    rows = conn.execute(select(a.c.organization_id, a.c.balance).where(
        a.c.program_id == program_id, a.c.kind == "pool", a.c.unit == unit,
        a.c.organization_id.in_(list(organization_ids))))
    return {r.organization_id: int(r.balance or 0) for r in rows}


def organization_accounts(conn: Connection, program_id: int, organization_id: int,
                          participant_ids: Collection[int]) -> list[dict[str, Any]]:
    """The organization's pool and escrow accounts plus the personal accounts of the given people,
    each with its holder's name; pool first, then people by name."""
    a, p = t.accounts, t.participants
    holder: ColumnElement[bool] = a.c.participant_id.is_(None)
    if participant_ids:
        holder = or_(holder, a.c.participant_id.in_(list(participant_ids)))
    rows = conn.execute(
        select(a.c.id, a.c.kind, a.c.unit, a.c.address, a.c.participant_id, a.c.balance,
               p.c.name.label("participant_name"))
        .outerjoin(p, p.c.id == a.c.participant_id)
        .where(a.c.program_id == program_id, a.c.organization_id == organization_id, holder)
        .order_by(a.c.participant_id.is_not(None), p.c.name, a.c.participant_id, a.c.unit, a.c.kind.desc()))
    return [{**dict(r._mapping), "balance": int(r.balance or 0)} for r in rows]


def recent_transactions(conn: Connection, program_id: int, organization_id: int, *, before: int | None = None,
                        limit: int = 20) -> list[dict[str, Any]]:
    """An organization's transactions, newest first (``limit + 1`` rows: the extra one says "more"),
    each with its legs on the organization's own accounts and the holder names."""
    tx = t.transactions
    query = select(tx.c.id, tx.c.kind, tx.c.memo, tx.c.event_id, tx.c.reverses_id, tx.c.created_at).where(
        tx.c.program_id == program_id, tx.c.organization_id == organization_id)
    if before is not None:
        query = query.where(tx.c.id < before)
    items = [dict(r._mapping) for r in conn.execute(query.order_by(tx.c.id.desc()).limit(limit + 1))]
    if not items:
        return items
    p, a, person = t.postings, t.accounts, t.participants
    legs: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(
        select(p.c.transaction_id, p.c.account_id, p.c.amount, p.c.unit, a.c.kind, a.c.participant_id,
               person.c.name.label("participant_name"))
        .join(a, a.c.id == p.c.account_id).outerjoin(person, person.c.id == a.c.participant_id)
        .where(p.c.transaction_id.in_([i["id"] for i in items]), a.c.organization_id == organization_id)
        .order_by(p.c.id)
    ):
        legs.setdefault(row.transaction_id, []).append(dict(row._mapping))
    for item in items:
        item["legs"] = legs.get(item["id"], [])
    return items


def account_postings(conn: Connection, account_id: int, *, before: int | None = None,
                     limit: int = 50) -> list[dict[str, Any]]:
    """An account's postings, newest first (``limit + 1`` rows), each with the transaction that made it."""
    p, tx = t.postings, t.transactions
    query = (select(p.c.id, p.c.transaction_id, p.c.amount, p.c.unit, tx.c.kind, tx.c.memo, tx.c.event_id,
                    tx.c.created_at)
             .join(tx, tx.c.id == p.c.transaction_id).where(p.c.account_id == account_id))
    if before is not None:
        query = query.where(p.c.id < before)
    return [dict(r._mapping) for r in conn.execute(query.order_by(p.c.id.desc()).limit(limit + 1))]


def organization_totals(conn: Connection, program_id: int, organization_id: int) -> list[dict[str, Any]]:
    """Σ balances of an organization's holder accounts per unit and kind, split company / people,
    whatever the number of people (the page lists only the first ones)."""
    a = t.accounts
    personal = a.c.participant_id.is_not(None).label("personal")
    rows = conn.execute(
        select(a.c.unit, a.c.kind, personal, func.coalesce(func.sum(a.c.balance), 0).label("total"))
        .where(a.c.program_id == program_id, a.c.organization_id == organization_id)
        .group_by(a.c.unit, a.c.kind, personal).order_by(a.c.unit))
    return [{"unit": r.unit, "kind": r.kind, "personal": bool(r.personal), "total": int(r.total)} for r in rows]
