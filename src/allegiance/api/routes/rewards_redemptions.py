"""Redemptions: request (a ledger hold), approve / reject, cancel, fulfil — and the gift register."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes import rewards_scope
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.rewards.model import RedemptionRequest, RedemptionStatus
from allegiance.storage.rewards_repo import SqlRewards

router = APIRouter(tags=["rewards"])
Redeemer = Annotated[Principal, Depends(authorized(Action.REDEEM))]
Approver = Annotated[Principal, Depends(authorized(Action.APPROVE_REDEMPTIONS))]


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class OptionalReason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


class Fulfilment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000, description="what was delivered, to whom, tracking")


@router.get("/redemptions")
def list_redemptions(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.READ_REWARDS))],
                     pg: Annotated[Page, Depends(page)], status: RedemptionStatus | None = None,
                     organization_id: QueryId = None) -> dict[str, Any]:
    """Operators: every redemption (``status=pending_approval`` is the approval queue); org admins:
    their organizations'; participants: those they asked for or receive."""
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        mine = principal.participant_id if principal.role is KeyRole.PARTICIPANT else None
        rows = uow.reward_store.redemptions(principal.program_id, visible=scope.organizations, participant_id=mine,
                                            after=pg.after, limit=pg.limit, status=status.value if status else None,
                                            organization_id=organization_id)
        items = [uow.rewards.view(row) for row in rows]
    return paged(items, pg)


@router.post("/redemptions", status_code=201)
def redeem(request: Request, app: AppDep, body: RedemptionRequest, key: IdempotencyKey,
           principal: Redeemer) -> JSONResponse:
    """Redeem a catalog item: stock, annual gift cap and the points are reserved at once; the answer
    shows the cost, the balance before and after, and the status (``approved`` or
    ``pending_approval``). Refused with 409 ``insufficient_funds``, ``out_of_stock`` or
    ``annual_cap_exceeded``, 403 ``pool_not_allowed``, 422 ``item_not_available``."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        rewards_scope.check_parties(uow, principal, participant_id=body.participant_id,
                                    organization_id=body.organization_id, recipient_id=body.recipient_participant_id)
        return 201, uow.rewards.redeem(principal.program_id, rewards_scope.actor_of(principal), body)

    return _run(request, app, principal, key, body, effect)


@router.get("/redemptions/{redemption_id}")
def get_redemption(app: AppDep, redemption_id: PathId,
                   principal: Annotated[Principal, Depends(authorized(Action.READ_REWARDS))]) -> dict[str, Any]:
    with app.read() as uow:
        rewards_scope.redemption(uow, principal, redemption_id)
        return uow.rewards.redemption(principal.program_id, redemption_id)


def _move(request: Request, app: Any, principal: Principal, key: str | None, body: Any, redemption_id: int,
          act: Any) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        rewards_scope.redemption(uow, principal, redemption_id)
        return 200, act(uow, rewards_scope.actor_of(principal))

    return _run(request, app, principal, key, body, effect)


@router.post("/redemptions/{redemption_id}/approve")
def approve(request: Request, app: AppDep, redemption_id: PathId, key: IdempotencyKey,
            principal: Approver) -> JSONResponse:
    """An org admin gives the manager's approval for their organization; an operator approves
    everything outstanding. Two approvers at once: one wins, the other gets 409."""
    return _move(request, app, principal, key, None, redemption_id,
                 lambda uow, actor: uow.rewards.approve(principal.program_id, redemption_id, actor))


@router.post("/redemptions/{redemption_id}/reject")
def reject(request: Request, app: AppDep, redemption_id: PathId, body: Reason, key: IdempotencyKey,
           principal: Approver) -> JSONResponse:
    """Refuse with a reason: the points, the stock and the gift allowance are released."""
    return _move(request, app, principal, key, body, redemption_id,
                 lambda uow, actor: uow.rewards.reject(principal.program_id, redemption_id, actor, body.reason))


@router.post("/redemptions/{redemption_id}/cancel")
def cancel(request: Request, app: AppDep, redemption_id: PathId, body: OptionalReason, key: IdempotencyKey,
           principal: Redeemer) -> JSONResponse:
    return _move(request, app, principal, key, body, redemption_id,
                 lambda uow, actor: uow.rewards.cancel(principal.program_id, redemption_id, actor, body.reason))


@router.post("/redemptions/{redemption_id}/fulfil")
def fulfil(request: Request, app: AppDep, redemption_id: PathId, body: Fulfilment, key: IdempotencyKey,
           principal: Annotated[Principal, Depends(authorized(Action.FULFIL_REDEMPTIONS))]) -> JSONResponse:
    """Delivered: the hold is posted (the points are spent for good)."""
    return _move(request, app, principal, key, body, redemption_id,
                 lambda uow, actor: uow.rewards.fulfil(principal.program_id, redemption_id, actor, body.note))


REGISTER_COLUMNS = ("year", "participant_id", "participant_external_id", "participant_name", "organization_id",
                    "organization_name", "unit", "gifts", "committed", "delivered")


def gift_register_csv(store: SqlRewards, program_id: int, year: int, visible: set[int] | None) -> str:
    """Per recipient and unit for one calendar year: gifts that count against the cap (requested,
    approved or delivered), their value, and the delivered value. Donations are not gifts."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REGISTER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in store.gift_register(program_id, year, visible):
        writer.writerow({**row, "year": year})
    return out.getvalue()


@router.get("/gift-register", response_class=Response)
def gift_register(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.GIFT_REGISTER))],
                  year: Annotated[int, Query(ge=2000, le=2200)]) -> Response:
    """CSV for compliance: operators get the whole program, org admins their organizations."""
    with app.read() as uow:
        text = gift_register_csv(uow.reward_store, principal.program_id, year, Scope.of(principal, uow).organizations)
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="gift-register-{year}.csv"'})
