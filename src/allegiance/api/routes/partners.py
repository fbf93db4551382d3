"""Coalition partners (issue 4): operators register partners and bind integration keys to them;
a partner (its bound integration key) or an operator reports earnings and redemptions, reverses
them and reads the partner's settlement. A partner key reaching for another partner gets 404, like
a missing partner."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, authorized, page, paged
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import Forbidden, NotFound
from allegiance.kernel.periods import day_range
from allegiance.ledger.policy import PoolSpenders
from allegiance.partners.model import Partner, PartnerCreate, PartnerOperation, PartnerUpdate, ReverseOperation

router = APIRouter(prefix="/partners", tags=["partners"])
Reader = Annotated[Principal, Depends(authorized(Action.READ_PARTNERS))]
Manager = Annotated[Principal, Depends(authorized(Action.MANAGE_PARTNERS))]
Transactor = Annotated[Principal, Depends(authorized(Action.PARTNER_TRANSACT))]
Settler = Annotated[Principal, Depends(authorized(Action.PARTNER_SETTLEMENT))]


class PartnerKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)


def partner_for(uow: UnitOfWork, principal: Principal, partner_id: int) -> Partner:
    """Operators reach every partner of their program; an integration key only its own partner."""
    if principal.role is not KeyRole.OPERATOR and \
            uow.partners.partner_of_key(principal.program_id, principal.key_id) != partner_id:
        raise NotFound(f"partner {partner_id} not found", field="partner_id")
    return uow.partners.partner(principal.program_id, partner_id)


@router.get("")
def list_partners(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)]) -> dict[str, Any]:
    with app.read() as uow:
        return paged(uow.partner_store.partners(principal.program_id, after=pg.after, limit=pg.limit), pg)


@router.post("", status_code=201)
def create_partner(request: Request, app: AppDep, body: PartnerCreate, key: IdempotencyKey,
                   principal: Manager) -> JSONResponse:
    """Register a partner; its settlement account is opened in the ledger at once."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, uow.partners.create(principal.program_id, body)

    return _run(request, app, principal, key, body, effect)


@router.get("/{partner_id}")
def get_partner(app: AppDep, partner_id: PathId, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        return uow.partners.row(principal.program_id, partner_id)


@router.patch("/{partner_id}")
def update_partner(app: AppDep, partner_id: PathId, body: PartnerUpdate, principal: Manager) -> dict[str, Any]:
    """Only the fields sent change; a new rate applies to later operations only."""
    with app.write() as uow:
        return uow.partners.update(principal.program_id, partner_id, body)


@router.post("/{partner_id}/keys", status_code=201)
def create_partner_key(app: AppDep, partner_id: PathId, body: PartnerKeyCreate, principal: Manager) -> dict[str, Any]:
    """An integration key bound to this partner (shown once): it may earn, redeem, reverse and read
    the settlement of this partner only (and send events, like any integration key)."""
    with app.write() as uow:
        uow.partners.row(principal.program_id, partner_id)
        key_id, secret = uow.access.create_key(principal.program_id, body.name, KeyRole.INTEGRATION)
        uow.partners.bind_key(principal.program_id, partner_id, key_id)
    return {"id": key_id, "name": body.name, "role": KeyRole.INTEGRATION.value, "key": secret,
            "partner_id": partner_id}


@router.post("/{partner_id}/earnings", status_code=201)
def earn(request: Request, app: AppDep, partner_id: PathId, body: PartnerOperation, key: IdempotencyKey,
         principal: Transactor) -> JSONResponse:
    """A purchase at the partner credits points to the organization/person (program split); the
    partner's settlement account is debited. The same ``reference`` again answers 200 with the
    first result; with other content, 409 ``partner_reference_conflict``."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        partner_for(uow, principal, partner_id)
        result = uow.partners.earn(principal.program_id, partner_id, body)
        return (200 if result["duplicate"] else 201), result

    return _run(request, app, principal, key, body, effect)


@router.post("/{partner_id}/redemptions", status_code=201)
def redeem(request: Request, app: AppDep, partner_id: PathId, body: PartnerOperation, key: IdempotencyKey,
           principal: Transactor) -> JSONResponse:
    """Points spent with the partner: from the person's account, or the organization's pool when no
    participant is named (a partner key may spend a pool unless the program's ``pool_spenders`` is
    ``operator_only``). 409 ``insufficient_funds`` when the available balance is short."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        partner_for(uow, principal, partner_id)
        if body.participant_id is None and principal.role is not KeyRole.OPERATOR and \
                uow.programs.settings(principal.program_id).pool_spenders is PoolSpenders.OPERATOR_ONLY:
            raise Forbidden("the program lets only operators spend an organization pool", field="participant_id")
        result = uow.partners.redeem(principal.program_id, partner_id, body)
        return (200 if result["duplicate"] else 201), result

    return _run(request, app, principal, key, body, effect)


@router.get("/{partner_id}/operations")
def list_operations(app: AppDep, partner_id: PathId, principal: Settler,
                    pg: Annotated[Page, Depends(page)]) -> dict[str, Any]:
    with app.read() as uow:
        partner_for(uow, principal, partner_id)
        return paged(uow.partner_store.operations(principal.program_id, partner_id, after=pg.after,
                                                  limit=pg.limit), pg)


@router.post("/{partner_id}/operations/{operation_id}/reverse", status_code=201)
def reverse(request: Request, app: AppDep, partner_id: PathId, operation_id: PathId, body: ReverseOperation,
            key: IdempotencyKey, principal: Transactor) -> JSONResponse:
    """Undo an earning or a redemption with one reversing transaction (once; 409 ``already_reversed``)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        partner_for(uow, principal, partner_id)
        return 201, uow.partners.reverse(principal.program_id, partner_id, operation_id, body.memo)

    return _run(request, app, principal, key, body, effect)


SETTLEMENT_COLUMNS = ("partner_id", "partner_code", "start", "end", "unit", "currency", "currency_scale",
                      "points_issued", "points_redeemed", "net_points", "partner_owes_minor", "operator_owes_minor",
                      "net_minor", "transactions", "reversals")


@router.get("/{partner_id}/settlement", response_model=None)
def settlement(app: AppDep, partner_id: PathId, principal: Settler,
               start: Annotated[date, Query(alias="from", description="first day (UTC), included")],
               end: Annotated[date, Query(alias="to", description="last day (UTC), included")],
               format: Annotated[Literal["json", "csv"], Query()] = "json") -> Any:
    """Points issued and redeemed with the partner in the period and the money owed each way at the
    rates each operation was posted at — computed from the settlement account's postings."""
    first, last = day_range(start, end)
    with app.read() as uow:
        partner_for(uow, principal, partner_id)
        report = uow.partners.settlement(principal.program_id, partner_id, first, last).as_dict()
    if format == "json":
        return report
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SETTLEMENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in report.items()})
    return Response(out.getvalue(), media_type="text/csv")
