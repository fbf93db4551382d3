"""Concierge (off-catalog) requests and charity donations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes import rewards_scope
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.rewards.model import ConciergeAsk, ConciergeQuote, ConciergeStatus, DonationRequest, localized

router = APIRouter(tags=["rewards"])
Reader = Annotated[Principal, Depends(authorized(Action.READ_REWARDS))]
Redeemer = Annotated[Principal, Depends(authorized(Action.REDEEM))]


class Decline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


@router.post("/concierge-requests", status_code=201)
def ask(request: Request, app: AppDep, body: ConciergeAsk, key: IdempotencyKey, principal: Redeemer) -> JSONResponse:
    """Ask for something outside the catalog; the account manager answers with a quote in points."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        rewards_scope.check_parties(uow, principal, participant_id=body.participant_id,
                                    organization_id=body.organization_id, recipient_id=body.recipient_participant_id)
        return 201, uow.concierge.ask(principal.program_id, rewards_scope.actor_of(principal), body)

    return _run(request, app, principal, key, body, effect)


@router.get("/concierge-requests")
def list_requests(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
                  status: ConciergeStatus | None = None) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        mine = principal.participant_id if principal.role is KeyRole.PARTICIPANT else None
        items = uow.reward_store.concierge_requests(principal.program_id, visible=scope.organizations,
                                                    participant_id=mine, after=pg.after, limit=pg.limit,
                                                    status=status.value if status else None)
    return paged(items, pg)


@router.get("/concierge-requests/{request_id}")
def get_request(app: AppDep, request_id: PathId, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        return rewards_scope.concierge(uow, principal, request_id)


def _act(request: Request, app: Any, principal: Principal, key: str | None, body: Any, request_id: int,
         act: Any) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        rewards_scope.concierge(uow, principal, request_id)
        return 200, act(uow, rewards_scope.actor_of(principal))

    return _run(request, app, principal, key, body, effect)


@router.post("/concierge-requests/{request_id}/quote")
def quote(request: Request, app: AppDep, request_id: PathId, body: ConciergeQuote, key: IdempotencyKey,
          principal: Annotated[Principal, Depends(authorized(Action.QUOTE_CONCIERGE))]) -> JSONResponse:
    """The account manager prices the request (again, to re-quote); valid for the policy's quote_days."""
    return _act(request, app, principal, key, body, request_id,
                lambda uow, actor: uow.concierge.quote(principal.program_id, request_id, actor, body))


@router.post("/concierge-requests/{request_id}/accept")
def accept(request: Request, app: AppDep, request_id: PathId, key: IdempotencyKey,
           principal: Redeemer) -> JSONResponse:
    """Accept the quote: it becomes a redemption (hold, approvals, fulfilment) in the same step."""
    return _act(request, app, principal, key, None, request_id,
                lambda uow, actor: uow.concierge.accept(principal.program_id, request_id, actor))


@router.post("/concierge-requests/{request_id}/decline")
def decline(request: Request, app: AppDep, request_id: PathId, body: Decline, key: IdempotencyKey,
            principal: Redeemer) -> JSONResponse:
    return _act(request, app, principal, key, body, request_id,
                lambda uow, actor: uow.concierge.decline(principal.program_id, request_id, actor, body.reason))


# -- charity -----------------------------------------------------------------------------------------
@router.post("/donations", status_code=201)
def donate(request: Request, app: AppDep, body: DonationRequest, key: IdempotencyKey,
           principal: Redeemer) -> JSONResponse:
    """Give points to a listed cause (a catalog item of category ``charity``): recorded with its money
    value and a receipt number as soon as it needs no (more) approval."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        rewards_scope.check_parties(uow, principal, participant_id=body.participant_id,
                                    organization_id=body.organization_id)
        return 201, uow.rewards.donate(principal.program_id, rewards_scope.actor_of(principal), body)

    return _run(request, app, principal, key, body, effect)


@router.get("/donations")
def list_donations(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
                   organization_id: QueryId = None) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = uow.reward_store.donations(principal.program_id, visible=scope.organizations, after=pg.after,
                                           limit=pg.limit, organization_id=organization_id)
    return paged(items, pg)


@router.get("/donations/statement")
def statement(app: AppDep, principal: Reader, organization_id: QueryId = None) -> dict[str, Any]:
    """Total donated per organization and cause: points given and the money value recorded."""
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        rows = uow.reward_store.donation_statement(principal.program_id, visible=scope.organizations,
                                                   organization_id=organization_id)
        names = {i["id"]: i["names"] for i in uow.reward_store.items(
            principal.program_id, limit=len(rows) + 1, ids={r["cause_id"] for r in rows})}
    items = [{**row, "cause_name": localized(names[row["cause_id"]], None)} for row in rows]
    return {"items": items}
