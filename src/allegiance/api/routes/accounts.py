from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes.ledger_scope import visible_account, visible_account_row
from allegiance.storage import queries

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("")
def list_accounts(
    app: AppDep,
    principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))],
    pg: Annotated[Page, Depends(page)],
    organization_id: QueryId = None,
    participant_id: QueryId = None,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    unit: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    if principal.role is KeyRole.PARTICIPANT:
        participant_id = principal.participant_id
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.accounts(uow.conn, principal.program_id, visible=scope.organizations, after=pg.after,
                                 limit=pg.limit, organization_id=organization_id, participant_id=participant_id,
                                 kind=kind, unit=unit)
    return paged(items, pg)


@router.get("/{account_id}")
def get_account(app: AppDep, account_id: PathId,
                principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))]) -> dict[str, Any]:
    """An account with its balance (Σ postings), the amount on hold and what is available."""
    with app.read() as uow:
        account = visible_account_row(uow, principal, account_id)
        held = queries.held_amount(uow.conn, account_id)
    return {**account, "held": held, "available": account["balance"], "total": account["balance"] + held}


@router.get("/{account_id}/postings")
def account_postings(app: AppDep, account_id: PathId, pg: Annotated[Page, Depends(page)],
                     principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))]) -> dict[str, Any]:
    """The account's history, oldest first: each entry says which transaction (and event) made it."""
    with app.read() as uow:
        visible_account(uow, principal, account_id)
        items = queries.postings_of_account(uow.conn, account_id, after=pg.after, limit=pg.limit)
    return paged(items, pg)
