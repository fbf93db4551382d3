from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes.ledger_scope import spendable_account
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.api.schemas import HoldCreate, HoldPost
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound
from allegiance.storage import queries

router = APIRouter(prefix="/holds", tags=["holds"])


def _hold(uow: UnitOfWork, principal: Principal, hold_id: int) -> dict[str, Any]:
    hold = uow.ledger_store.get_hold(principal.program_id, hold_id)
    scope = Scope.of(principal, uow)
    if hold is None or not scope.sees_organization(hold.organization_id) or not scope.sees_account_id(hold.account_id):
        raise NotFound(f"hold {hold_id} not found")
    return hold.__dict__


@router.get("")
def list_holds(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))],
               pg: Annotated[Page, Depends(page)],
               status: Annotated[str | None, Query(max_length=20)] = None,
               account_id: QueryId = None) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.holds(uow.conn, principal.program_id, visible=scope.organizations, after=pg.after,
                              limit=pg.limit, status=status, account_id=account_id, accounts=scope.accounts)
    return paged(items, pg)


@router.post("", status_code=201)
def reserve(request: Request, app: AppDep, body: HoldCreate, key: IdempotencyKey,
            principal: Annotated[Principal, Depends(authorized(Action.HOLD))]) -> JSONResponse:
    """Reserve points (phase one): they leave the available balance until posted, voided or expired."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        account = spendable_account(uow, principal, body.account_id)
        uow.programs.settings(principal.program_id).check_spend_channel(account.unit, body.channel)
        ttl = body.ttl_hours or uow.programs.settings(principal.program_id).hold_ttl_hours
        hold = uow.ledger.reserve(principal.program_id, body.account_id, body.amount, ttl=timedelta(hours=ttl),
                                  memo=body.memo)
        return 201, hold.__dict__

    return _run(request, app, principal, key, body, effect)


@router.get("/{hold_id}")
def get_hold(app: AppDep, hold_id: PathId,
             principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))]) -> dict[str, Any]:
    with app.read() as uow:
        return _hold(uow, principal, hold_id)


@router.post("/{hold_id}/post")
def post_hold(request: Request, app: AppDep, hold_id: PathId, body: HoldPost, key: IdempotencyKey,
              principal: Annotated[Principal, Depends(authorized(Action.RESOLVE_HOLD))]) -> JSONResponse:
    """Capture a hold (phase two), fully or partly; a partial capture releases the rest."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _hold(uow, principal, hold_id)
        return 200, uow.ledger.post_hold(principal.program_id, hold_id, body.amount).__dict__

    return _run(request, app, principal, key, body, effect)


@router.post("/{hold_id}/void")
def void_hold(request: Request, app: AppDep, hold_id: PathId, key: IdempotencyKey,
              principal: Annotated[Principal, Depends(authorized(Action.RESOLVE_HOLD))]) -> JSONResponse:
    """Release a hold: the points return to the holder with their original expiry."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _hold(uow, principal, hold_id)
        return 200, uow.ledger.void_hold(principal.program_id, hold_id).__dict__

    return _run(request, app, principal, key, None, effect)
