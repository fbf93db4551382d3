"""One account: what it holds, what is on hold, and every posting that made the balance."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from starlette.responses import Response

from allegiance.kernel.cursors import decode_cursor
from allegiance.kernel.errors import NotFound
from allegiance.storage import queries, web_queries
from allegiance.web.auth import OperatorDep, get_allegiance
from allegiance.web.pagination import window
from allegiance.web.rendering import is_fragment, render, with_query
from allegiance.web.routing import web_router

router = web_router()

POSTINGS_PAGE = 50


@router.get("/accounts/{account_id}")
def account_detail(request: Request, operator: OperatorDep, account_id: int,
                   cursor: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = POSTINGS_PAGE) -> Response:
    """Balance = available + held: holder balances exclude what pending holds moved to escrow."""
    program_id = operator.program_id
    before = decode_cursor(cursor)
    with get_allegiance(request).read() as uow:
        account = queries.account(uow.conn, program_id, account_id)
        if account is None:
            raise NotFound(f"account {account_id} not found in this program")
        held = queries.held_amount(uow.conn, account_id)
        organization = (uow.programs.organization(program_id, account["organization_id"])
                        if account["organization_id"] else None)
        participant = (uow.programs.participant(program_id, account["participant_id"])
                       if account["participant_id"] else None)
        page = window(web_queries.account_postings(uow.conn, account_id, before=before, limit=limit), limit)
    base = f"/accounts/{account_id}"
    context = {
        "operator": operator, "account": account, "held": held, "available": account["balance"],
        "total": account["balance"] + held, "organization": organization, "participant": participant,
        "label_row": {**account, "participant_name": participant["name"] if participant else None},
        "postings": page.items,
        "next_url": with_query(base, cursor=page.next_cursor, limit=limit if limit != POSTINGS_PAGE else None)
        if page.next_cursor else None,
        "first_url": base if cursor else None,
    }
    if is_fragment(request):
        return render(request, "partials/posting_rows.html", context)
    return render(request, "accounts/detail.html", context)
