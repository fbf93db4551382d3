"""Tiers over HTTP: ladders (operator), each organization's status, progress and history, the
tier benefits a caller may see, discount cards, and applying store credit to an order."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, PathId, Scope, authorized
from allegiance.api.routes.ledger_scope import spendable_account
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound
from allegiance.tiers.model import DiscountCard, Ladder

router = APIRouter(tags=["tiers"])
LadderCode = Annotated[str, Path(max_length=60, pattern=r"^[a-z0-9][a-z0-9_.-]{0,59}$")]


class LadderSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(description="A tier ladder: see GET /tiers/schema")


class CardSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card: dict[str, Any] = Field(description="A discount card: see GET /tiers/schema, $defs.DiscountCard")


class StoreCreditApply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=200, description="the order or invoice the credit pays")
    amount: int = Field(ge=1, le=10**15, description="minor units of the unit")
    unit: str = Field(min_length=1, max_length=16, description="a store-credit unit of the program")
    channel: str | None = Field(default=None, max_length=60,
                                description="where it is spent; units with spend_channels require one of them")
    memo: str = Field(default="", max_length=500)


def _ladder(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("code", "level", "version", "document", "created_by", "created_at", "updated_by", "updated_at")
    return {k: row[k] for k in keep}


def _organization(uow: UnitOfWork, principal: Principal, organization_id: int) -> dict[str, Any]:
    org = uow.program_store.organization(principal.program_id, organization_id)
    if org is None or not Scope.of(principal, uow).sees_organization(org["id"]):
        raise NotFound(f"organization {organization_id} not found")
    return org


@router.get("/tiers/schema")
def tier_schema(principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> dict[str, Any]:
    """The JSON Schema of a ladder document and of a discount card."""
    return {"ladder": Ladder.model_json_schema(), "discount_card": DiscountCard.model_json_schema()}


@router.get("/tiers/ladders")
def list_ladders(app: AppDep,
                 principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> dict[str, Any]:
    with app.read() as uow:
        rows = uow.tier_store.ladders(principal.program_id)
    return {"items": [_ladder(r) for r in rows], "next_cursor": None}


@router.post("/tiers/ladders", status_code=201)
def create_ladder(request: Request, app: AppDep, body: LadderSave, key: IdempotencyKey,
                  principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> JSONResponse:
    """Create a ladder (one per level: organization, participant); its totals are built from the
    stored events at once."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, _ladder(uow.tiers.save_ladder(principal.program_id, body.document,
                                                  by=principal.idempotency_scope))

    return _run(request, app, principal, key, body, effect)


@router.get("/tiers/ladders/{code}")
def get_ladder(app: AppDep, code: LadderCode,
               principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> dict[str, Any]:
    with app.read() as uow:
        row = uow.tier_store.ladder(principal.program_id, code)
    if row is None:
        raise NotFound(f"ladder {code!r} not found")
    return _ladder(row)


@router.put("/tiers/ladders/{code}")
def replace_ladder(request: Request, app: AppDep, code: LadderCode, body: LadderSave, key: IdempotencyKey,
                   principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> JSONResponse:
    """Replace a ladder; statuses move with the next event or review run."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, _ladder(uow.tiers.save_ladder(principal.program_id, body.document, code=code,
                                                  by=principal.idempotency_scope))

    return _run(request, app, principal, key, body, effect)


@router.delete("/tiers/ladders/{code}")
def delete_ladder(request: Request, app: AppDep, code: LadderCode, key: IdempotencyKey,
                  principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> JSONResponse:
    """Remove a ladder with its statuses, history and totals."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        uow.tiers.delete_ladder(principal.program_id, code, by=principal.idempotency_scope)
        return 200, {"deleted": code}

    return _run(request, app, principal, key, None, effect)


@router.post("/tiers/review")
def run_review(request: Request, app: AppDep, key: IdempotencyKey,
               principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> JSONResponse:
    """Run the review job now (as ``allegiance tiers review`` does): upgrades, warnings, and
    downgrades due at period end after the grace period. Idempotent."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, uow.tiers.review(principal.program_id)

    return _run(request, app, principal, key, None, effect)


@router.get("/organizations/{organization_id}/tier")
def organization_tier(app: AppDep, organization_id: PathId,
                      principal: Annotated[Principal, Depends(authorized(Action.READ_TIERS))]) -> dict[str, Any]:
    """The organization's tier (its own, or a group's above it), what it was measured on, how far
    the next tier is, a pending downgrade if any, and the history, newest first."""
    with app.read() as uow:
        org = _organization(uow, principal, organization_id)
        return {"organization_id": org["id"], **uow.tiers.standing(principal.program_id, org["id"])}


@router.get("/participants/{participant_id}/tier")
def participant_tier(app: AppDep, participant_id: PathId,
                     principal: Annotated[Principal, Depends(authorized(Action.READ_TIERS))]) -> dict[str, Any]:
    """A person's own status on the program's participant ladder, if it has one."""
    with app.read() as uow:
        person = uow.program_store.participant(principal.program_id, participant_id)
        if person is None or not Scope.of(principal, uow).sees_participant(person):
            raise NotFound(f"participant {participant_id} not found")
        return {"participant_id": person["id"],
                **uow.tiers.standing(principal.program_id, person["organization_id"], person["id"])}


@router.get("/organizations/{organization_id}/tier/benefits")
def tier_benefits(app: AppDep, organization_id: PathId,
                  principal: Annotated[Principal, Depends(authorized(Action.READ_TIERS))]) -> dict[str, Any]:
    """The organization's tier benefits the caller may see: a participant only those open to
    their role; operators and organization admins all of them."""
    with app.read() as uow:
        org = _organization(uow, principal, organization_id)
        role = None
        if principal.role is KeyRole.PARTICIPANT:
            person = uow.program_store.participant(principal.program_id, principal.participant_id or 0)
            role = person["role"] if person else None
        result = uow.tiers.benefits(principal.program_id, org["id"], role,
                                    everything=principal.role is not KeyRole.PARTICIPANT)
    return {"organization_id": org["id"], **result}


@router.get("/organizations/{organization_id}/discount-card")
def get_discount_card(app: AppDep, organization_id: PathId,
                      principal: Annotated[Principal, Depends(authorized(Action.READ_TIERS))]) -> dict[str, Any]:
    """The organization's card and the discount it gets now (card or tier), with the next step."""
    with app.read() as uow:
        org = _organization(uow, principal, organization_id)
        return uow.tiers.card(principal.program_id, org["id"])


@router.put("/organizations/{organization_id}/discount-card")
def set_discount_card(request: Request, app: AppDep, organization_id: PathId, body: CardSave, key: IdempotencyKey,
                      principal: Annotated[Principal, Depends(authorized(Action.MANAGE_TIERS))]) -> JSONResponse:
    """Give the organization a fixed or cumulative discount card (replacing any it had)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        org = _organization(uow, principal, organization_id)
        return 200, uow.tiers.set_card(principal.program_id, org["id"], body.card, by=principal.idempotency_scope)

    return _run(request, app, principal, key, body, effect)


@router.post("/organizations/{organization_id}/store-credit/apply", status_code=201)
def apply_store_credit(request: Request, app: AppDep, organization_id: PathId, body: StoreCreditApply,
                       key: IdempotencyKey,
                       principal: Annotated[Principal, Depends(authorized(Action.APPLY_STORE_CREDIT))]) -> JSONResponse:
    """Pay part of an order or invoice with the organization's store credit: a ledger spend from
    its pool carrying the reference. Refused past the balance (409 ``insufficient_funds``), outside
    the unit's channels or past its per-order cap (422 naming the field)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        org = _organization(uow, principal, organization_id)
        settings = uow.programs.settings(principal.program_id)
        if settings.unit(body.unit) is not None:  # pools are spent per the program's pool_spenders
            spendable_account(uow, principal, uow.ledger.holder_account(principal.program_id, body.unit, org["id"]).id,
                              field="organization_id")
        return 201, uow.store_credit.apply(principal.program_id, org["id"], unit=body.unit, amount=body.amount,
                                           reference=body.reference, channel=body.channel,
                                           by=principal.idempotency_scope, memo=body.memo)

    return _run(request, app, principal, key, body, effect)
