"""Read queries the operator pages need beyond :mod:`allegiance.storage.queries`.

Each one is a single statement (or two, for rows plus their legs) whatever the number of rows, so a
page's query count stays bounded: pages list newest first, hence the ``before`` cursors here where
the API's lists page oldest first with ``after``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, cast, func, literal, or_, select

from allegiance.storage import tables as t
from allegiance.storage.tables_coop import coop_claims as claims_table
from allegiance.storage.tables_rewards import redemptions as redemptions_table
from allegiance.storage.tables_tiers import tier_status


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


# -- issue 4: organization admins, redemptions, names, tiers, co-op claims ---------------------------------


def org_admin_of(conn: Connection, participant_id: int) -> dict[str, Any] | None:
    """The participant behind an organization admin's sign-in, with their program (one query)."""
    p, prog = t.participants, t.programs
    row = conn.execute(
        select(p.c.id, p.c.program_id, p.c.organization_id, p.c.name, p.c.role, p.c.is_org_admin, p.c.status,
               prog.c.name.label("program_name"), prog.c.settings.label("program_settings"))
        .join(prog, prog.c.id == p.c.program_id).where(p.c.id == participant_id)).first()
    return dict(row._mapping) if row else None


def subtree(conn: Connection, program_id: int, root: int) -> set[int]:
    """An organization and everything below it, in one recursive query (bounded depth)."""
    o = t.organizations
    tree = (select(o.c.id, literal(0).label("depth"))
            .where(o.c.program_id == program_id, o.c.id == root).cte("tree", recursive=True))
    above, child = tree.alias("above"), o.alias("child")
    tree = tree.union_all(
        select(child.c.id, (above.c.depth + 1).label("depth"))
        .where(child.c.parent_id == above.c.id, child.c.program_id == program_id, above.c.depth < 64))
    return {int(i) for i in conn.execute(select(tree.c.id)).scalars()}


def names(conn: Connection, program_id: int, organization_ids: Collection[int],
          participant_ids: Collection[int]) -> tuple[dict[int, str], dict[int, str]]:
    """Names of organizations and people for a page's rows: two queries whatever the number of rows."""
    o, p = t.organizations, t.participants
    orgs: dict[int, str] = {}
    people: dict[int, str] = {}
    if organization_ids:
        orgs = {int(r.id): r.name for r in conn.execute(select(o.c.id, o.c.name).where(
            o.c.program_id == program_id, o.c.id.in_(sorted(set(organization_ids)))))}
    if participant_ids:
        people = {int(r.id): r.name for r in conn.execute(select(p.c.id, p.c.name).where(
            p.c.program_id == program_id, p.c.id.in_(sorted(set(participant_ids)))))}
    return orgs, people


def redemptions(conn: Connection, program_id: int, *, visible: Collection[int] | None, status: str | None,
                waiting_for: str | None = None, cursor: int | None = None, newest_first: bool = False,
                limit: int = 50) -> list[dict[str, Any]]:
    """Redemptions with the organization's, payer's and recipient's names (``limit + 1`` rows).

    ``waiting_for`` keeps those whose outstanding approvals include that step (``manager``,
    ``operator``): the JSON list is matched as text, which reads the same on SQLite and PostgreSQL
    because step names are plain words. Queues read oldest first, histories newest first."""
    r = redemptions_table
    o, payer, recipient = t.organizations, t.participants.alias("payer"), t.participants.alias("recipient")
    query = (select(r.c.id, r.c.organization_id, r.c.item_code, r.c.item_name, r.c.category, r.c.unit,
                    r.c.quantity, r.c.cost, r.c.source, r.c.status, r.c.approvals_outstanding, r.c.created_at,
                    r.c.expires_at, r.c.participant_id, r.c.recipient_participant_id,
                    o.c.name.label("organization_name"), payer.c.name.label("participant_name"),
                    recipient.c.name.label("recipient_name"))
             .join(o, o.c.id == r.c.organization_id)
             .outerjoin(payer, payer.c.id == r.c.participant_id)
             .outerjoin(recipient, recipient.c.id == r.c.recipient_participant_id)
             .where(r.c.program_id == program_id))
    if visible is not None:
        query = query.where(r.c.organization_id.in_(sorted(visible)))
    if status is not None:
        query = query.where(r.c.status == status)
    if waiting_for is not None:
        query = query.where(cast(r.c.approvals_outstanding, String).like(f'%"{waiting_for}"%'))
    if cursor is not None:
        query = query.where(r.c.id < cursor if newest_first else r.c.id > cursor)
    order = r.c.id.desc() if newest_first else r.c.id
    return [dict(row._mapping) for row in conn.execute(query.order_by(order).limit(limit + 1))]


def status_counts(conn: Connection, table: Any, program_id: int,
                  visible: Collection[int] | None = None) -> dict[str, int]:
    """How many rows of a status-bearing table (redemptions, co-op claims) are in each status."""
    query = select(table.c.status, func.count()).where(table.c.program_id == program_id)
    if visible is not None:
        query = query.where(table.c.organization_id.in_(sorted(visible)))
    return {str(s): int(n) for s, n in conn.execute(query.group_by(table.c.status))}


def tier_counts(conn: Connection, program_id: int) -> dict[tuple[int, str | None], int]:
    """Subjects per (ladder id, tier) as recorded in the tier status rows (None: below the first tier)."""
    s = tier_status
    rows = conn.execute(select(s.c.ladder_id, s.c.tier, func.count()).where(s.c.program_id == program_id)
                        .group_by(s.c.ladder_id, s.c.tier))
    return {(int(ladder), tier): int(n) for ladder, tier, n in rows}


def tier_members(conn: Connection, program_id: int, ladder_id: int, tier: str, *, after: int = 0,
                 limit: int = 50) -> list[dict[str, Any]]:
    """Who holds ``tier`` on a ladder (``limit + 1`` rows by status id), with names and since when."""
    s, o, p = tier_status, t.organizations, t.participants
    query = (select(s.c.id, s.c.organization_id, s.c.participant_id, s.c.since, s.c.pending_tier, s.c.downgrade_at,
                    o.c.name.label("organization_name"), p.c.name.label("participant_name"))
             .join(o, o.c.id == s.c.organization_id).outerjoin(p, p.c.id == s.c.participant_id)
             .where(s.c.program_id == program_id, s.c.ladder_id == ladder_id, s.c.tier == tier, s.c.id > after))
    return [dict(r._mapping) for r in conn.execute(query.order_by(s.c.id).limit(limit + 1))]


def coop_claims(conn: Connection, program_id: int, *, status: str | None, cursor: int | None = None,
                newest_first: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """Co-op claims with the organization's name (``limit + 1`` rows); queues oldest first."""
    c, o = claims_table, t.organizations
    query = (select(c.c.id, c.c.organization_id, c.c.activity_type, c.c.description, c.c.cost, c.c.currency,
                    c.c.activity_date, c.c.invoice_number, c.c.brand_count, c.c.unit, c.c.requested_amount,
                    c.c.approved_amount, c.c.status, c.c.created_at, o.c.name.label("organization_name"))
             .join(o, o.c.id == c.c.organization_id).where(c.c.program_id == program_id))
    if status is not None:
        query = query.where(c.c.status == status)
    if cursor is not None:
        query = query.where(c.c.id < cursor if newest_first else c.c.id > cursor)
    order = c.c.id.desc() if newest_first else c.c.id
    return [dict(r._mapping) for r in conn.execute(query.order_by(order).limit(limit + 1))]
