from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from allegiance.access.model import Action, Principal
from allegiance.api import idempotency
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes.ledger_scope import spendable_account, visible_account
from allegiance.api.schemas import AdjustRequest, AwardRequest, ReverseRequest, SpendRequest, TransferRequest
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.ledger.service import Posted
from allegiance.storage import queries

router = APIRouter(prefix="/transactions", tags=["transactions"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _body(uow: UnitOfWork, principal: Principal, posted: Posted) -> dict[str, Any]:
    items = queries.transactions(uow.conn, principal.program_id, visible=None, ids=[posted.transaction_id])
    return items[0]


def _run(request: Request, app: Any, principal: Principal, key: str | None, body: Any,
         effect: Any) -> JSONResponse:
    fingerprint = {"path": request.url.path, "body": body.model_dump(mode="json") if body else None}
    return idempotency.run(app, request.app.state.in_flight, principal, key, fingerprint, effect)


@router.get("")
def list_transactions(
    app: AppDep,
    principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))],
    pg: Annotated[Page, Depends(page)],
    organization_id: QueryId = None,
    kind: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.transactions(uow.conn, principal.program_id, visible=scope.organizations, after=pg.after,
                                     limit=pg.limit, organization_id=organization_id, kind=kind,
                                     touching=scope.accounts)
    return paged(items, pg)


@router.get("/{transaction_id}")
def get_transaction(app: AppDep, transaction_id: PathId,
                    principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))]) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.transactions(uow.conn, principal.program_id, visible=scope.organizations,
                                     ids=[transaction_id], touching=scope.accounts)
    if not items:
        raise NotFound(f"transaction {transaction_id} not found")
    return items[0]


@router.post("/awards", status_code=201)
def award(request: Request, app: AppDep, body: AwardRequest, key: IdempotencyKey,
          principal: Annotated[Principal, Depends(authorized(Action.AWARD))]) -> JSONResponse:
    """Issue points (or credit) to an organization, or to a person split with their company pool
    per the program's ``award_split``."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        settings = uow.programs.settings(principal.program_id)
        unit = body.unit or settings.default_unit
        if settings.unit(unit) is None:
            raise ValidationFailed(f"unit {unit!r} is not one of the program's units", field="unit")
        uow.programs.organization(principal.program_id, body.organization_id)
        if body.participant_id is not None:
            person = uow.programs.participant(principal.program_id, body.participant_id)
            if person["organization_id"] != body.organization_id:
                raise ValidationFailed("the participant is not in that organization", field="participant_id")
            if person["status"] == "left":
                raise ValidationFailed("the participant has left the organization", field="participant_id")
        posted = uow.ledger.award(principal.program_id, unit, body.amount, organization_id=body.organization_id,
                                  participant_id=body.participant_id, split=settings.award_split,
                                  expiry=settings.expiry_for(unit), memo=body.memo)
        return 201, _body(uow, principal, posted)

    return _run(request, app, principal, key, body, effect)


@router.post("/spends", status_code=201)
def spend(request: Request, app: AppDep, body: SpendRequest, key: IdempotencyKey,
          principal: Annotated[Principal, Depends(authorized(Action.SPEND))]) -> JSONResponse:
    """Spend from an account at once (a redemption without approval). Refused with 409
    ``insufficient_funds`` when the available balance is short."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        account = spendable_account(uow, principal, body.account_id)
        uow.programs.settings(principal.program_id).check_spend_channel(account.unit, body.channel)
        metadata = {k: v for k, v in (("channel", body.channel), ("reference", body.reference)) if v}
        return 201, _body(uow, principal, uow.ledger.spend(principal.program_id, body.account_id, body.amount,
                                                           memo=body.memo, metadata=metadata or None))

    return _run(request, app, principal, key, body, effect)


@router.post("/adjustments", status_code=201)
def adjust(request: Request, app: AppDep, body: AdjustRequest, key: IdempotencyKey,
           principal: Annotated[Principal, Depends(authorized(Action.ADJUST))]) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        account = visible_account(uow, principal, body.account_id)
        settings = uow.programs.settings(principal.program_id)
        return 201, _body(uow, principal, uow.ledger.adjust(principal.program_id, body.account_id, body.amount,
                                                            memo=body.memo, expiry=settings.expiry_for(account.unit)))

    return _run(request, app, principal, key, body, effect)


@router.post("/transfers", status_code=201)
def transfer(request: Request, app: AppDep, body: TransferRequest, key: IdempotencyKey,
             principal: Annotated[Principal, Depends(authorized(Action.TRANSFER))]) -> JSONResponse:
    """Move value between an organization's pool and one of its people (either way)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        spendable_account(uow, principal, body.from_account_id, field="from_account_id")
        visible_account(uow, principal, body.to_account_id, field="to_account_id")
        posted = uow.ledger.transfer(principal.program_id, body.from_account_id, body.to_account_id, body.amount,
                                     memo=body.memo)
        return 201, _body(uow, principal, posted)

    return _run(request, app, principal, key, body, effect)


@router.post("/{transaction_id}/reverse", status_code=201)
def reverse(request: Request, app: AppDep, transaction_id: PathId, body: ReverseRequest, key: IdempotencyKey,
            principal: Annotated[Principal, Depends(authorized(Action.REVERSE))]) -> JSONResponse:
    """Correct a transaction with its exact opposite; the original is never edited."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        posted = uow.ledger.reverse(principal.program_id, transaction_id, memo=body.memo)
        return 201, _body(uow, principal, posted)

    return _run(request, app, principal, key, body, effect)
