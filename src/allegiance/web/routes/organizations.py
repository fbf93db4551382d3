"""Organizations: the searchable list (with its live-search fragment), one organization's page
(hierarchy, people, accounts, recent history) and its full transaction history.

Every page runs a fixed number of queries whatever the number of rows (no per-row lookups): the
list's pool balances come in one query for the whole page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from allegiance.kernel.cursors import decode_cursor
from allegiance.programs.model import OrganizationKind, OrganizationStatus
from allegiance.storage import queries, web_queries
from allegiance.web.auth import OperatorDep, get_allegiance
from allegiance.web.pagination import window
from allegiance.web.rendering import is_fragment, render, with_query
from allegiance.web.routing import web_router

router = web_router()

PEOPLE_SHOWN = 100
RECENT_TRANSACTIONS = 10
HISTORY_PAGE = 50
TIER_HISTORY = 10

Text = Annotated[str | None, Query(max_length=100)]
Cursor = Annotated[str | None, Query(max_length=200)]


def _choice(value: str | None, allowed: type[OrganizationKind] | type[OrganizationStatus]) -> str | None:
    """Filters come from selects: an unknown value means 'any' rather than an error page."""
    return value if value in {m.value for m in allowed} else None


@router.get("/organizations")
def organization_list(request: Request, operator: OperatorDep, q: Text = None, kind: Text = None,
                      status: Text = None, cursor: Cursor = None,
                      limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    q = (q or "").strip() or None
    kind, status = _choice(kind, OrganizationKind), _choice(status, OrganizationStatus)
    after = decode_cursor(cursor) or 0
    program_id = operator.program_id
    unit = operator.settings.default_unit if operator.settings else "PTS"
    with get_allegiance(request).read() as uow:
        rows = queries.organizations(uow.conn, program_id, visible=None, after=after, limit=limit, q=q,
                                     kind=kind, status=status)
        page = window(rows, limit)
        pools = web_queries.pool_balances(uow.conn, program_id, [o["id"] for o in page.items], unit)
    next_url = page.next_cursor and with_query("/organizations", q=q, kind=kind, status=status,
                                               cursor=page.next_cursor, limit=limit if limit != 50 else None)
    context = {"operator": operator, "organizations": page.items, "pools": pools, "unit": unit, "q": q or "",
               "kind": kind or "", "status": status or "", "next_url": next_url, "searched": bool(q or kind or status),
               "kinds": [k.value for k in OrganizationKind], "statuses": [s.value for s in OrganizationStatus]}
    if is_fragment(request):
        return render(request, "partials/organization_rows.html", context)
    return render(request, "organizations/list.html", context)


def _totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per unit: the company pool, what is on hold, and the people's balances."""
    by_unit: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = by_unit.setdefault(row["unit"], {"unit": row["unit"], "pool": 0, "pool_held": 0, "people": 0,
                                                 "people_held": 0})
        held = row["kind"] == "held"
        key = ("people" if row["personal"] else "pool") + ("_held" if held else "")
        if row["kind"] in ("pool", "personal", "held"):
            entry[key] += row["total"]
    return list(by_unit.values())


@router.get("/organizations/{organization_id}")
def organization_detail(request: Request, operator: OperatorDep, organization_id: int) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        organization = uow.programs.organization(program_id, organization_id)  # NotFound → 404 page
        ancestors = web_queries.ancestors(uow.conn, program_id, organization_id)
        children = queries.children(uow.conn, program_id, organization_id)
        people = window(queries.participants(uow.conn, program_id, visible=None, organization_id=organization_id,
                                             limit=PEOPLE_SHOWN), PEOPLE_SHOWN)
        accounts = web_queries.organization_accounts(uow.conn, program_id, organization_id,
                                                     [p["id"] for p in people.items])
        totals = _totals(web_queries.organization_totals(uow.conn, program_id, organization_id))
        recent = window(web_queries.recent_transactions(uow.conn, program_id, organization_id,
                                                        limit=RECENT_TRANSACTIONS), RECENT_TRANSACTIONS)
        tier = uow.tiers.standing(program_id, organization_id, history=TIER_HISTORY)
    history_url = f"/organizations/{organization_id}/transactions"
    return render(request, "organizations/detail.html", {
        "operator": operator, "organization": organization, "ancestors": ancestors, "children": children,
        "people": people.items, "more_people": people.next_cursor is not None, "people_shown": PEOPLE_SHOWN,
        "accounts": accounts, "totals": totals, "transactions": recent.items,
        "more_url": with_query(history_url, cursor=recent.next_cursor) if recent.next_cursor else None,
        "history_url": history_url, "tier": tier if tier["ladder"] else None,
    })


@router.get("/organizations/{organization_id}/transactions")
def organization_transactions(request: Request, operator: OperatorDep, organization_id: int,
                              cursor: Cursor = None) -> Response:
    """The whole history, newest first, a page at a time."""
    program_id = operator.program_id
    before = decode_cursor(cursor)
    with get_allegiance(request).read() as uow:
        organization = uow.programs.organization(program_id, organization_id)
        ancestors = web_queries.ancestors(uow.conn, program_id, organization_id)
        page = window(web_queries.recent_transactions(uow.conn, program_id, organization_id, before=before,
                                                      limit=HISTORY_PAGE), HISTORY_PAGE)
    base = f"/organizations/{organization_id}/transactions"
    return render(request, "organizations/transactions.html", {
        "operator": operator, "organization": organization, "ancestors": ancestors, "transactions": page.items,
        "next_url": with_query(base, cursor=page.next_cursor) if page.next_cursor else None,
        "first_url": base if cursor else None,
    })
