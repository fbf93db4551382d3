"""Referrals (issue 4): the program's scheme, participants' codes and links, registering a referred
organization, and the review queue of held (suspicious) referrals.

Participants see their own codes and referrals, org admins their organization's, operators all.
Conversions are not an endpoint: they happen when the referred organization's first qualifying
order is recorded (``POST /api/v1/events``), and rules reward both sides on ``referral.converted``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.referrals.model import ReferralSettings, ReferralStatus, RegisterReferral, Review
from allegiance.referrals.service import view

router = APIRouter(prefix="/referrals", tags=["referrals"])
Reader = Annotated[Principal, Depends(authorized(Action.READ_REFERRALS))]
Reviewer = Annotated[Principal, Depends(authorized(Action.REVIEW_REFERRALS))]


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    participant_id: int | None = Field(default=None, ge=1, description="default: the calling participant")
    rotate: bool = Field(default=False, description="retire the current code and issue a new one")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _mine(principal: Principal) -> int | None:
    return principal.participant_id if principal.role is KeyRole.PARTICIPANT else None


def _referral(uow: UnitOfWork, principal: Principal, referral_id: int) -> dict[str, Any]:
    row = uow.referral_store.referral(principal.program_id, referral_id)
    mine = _mine(principal)
    if (row is None or not Scope.of(principal, uow).sees_organization(row["referrer_organization_id"])
            or (mine is not None and row["referrer_participant_id"] != mine)):
        raise NotFound(f"referral {referral_id} not found", field="referral_id")
    return row


@router.get("/settings")
def get_settings(app: AppDep, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        return uow.referrals.settings(principal.program_id).model_dump(mode="json")


@router.put("/settings")
def put_settings(app: AppDep, body: ReferralSettings,
                 principal: Annotated[Principal, Depends(authorized(Action.CONFIGURE_PROGRAM))]) -> dict[str, Any]:
    """Replace the scheme; also declares the ``referral.joined`` and ``referral.converted`` event
    types, so rules can reward them (none do until an operator writes such rules)."""
    with app.write() as uow:
        saved = uow.referrals.set_settings(principal.program_id, body, principal.idempotency_scope)
    return saved.model_dump(mode="json")


@router.get("/codes")
def list_codes(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
               participant_id: QueryId = None) -> dict[str, Any]:
    with app.read() as uow:
        settings = uow.referrals.settings(principal.program_id)
        rows = uow.referral_store.codes(principal.program_id, visible=Scope.of(principal, uow).organizations,
                                        participant_id=_mine(principal) or participant_id, after=pg.after,
                                        limit=pg.limit)
        items = [uow.referrals.code_view(row, settings) for row in rows]
    return paged(items, pg)


@router.post("/codes")
def issue_code(request: Request, app: AppDep, body: CodeRequest, key: IdempotencyKey,
               principal: Annotated[Principal, Depends(authorized(Action.REFER))]) -> JSONResponse:
    """A participant's code and link (created on first use; ``rotate`` replaces it)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        participant_id = body.participant_id or principal.participant_id
        if participant_id is None:
            raise ValidationFailed("name the participant", field="participant_id")
        person = uow.program_store.participant(principal.program_id, participant_id)
        if person is None or not Scope.of(principal, uow).sees_participant(person):
            raise NotFound(f"participant {participant_id} not found", field="participant_id")
        return 200, uow.referrals.code_for(principal.program_id, participant_id, rotate=body.rotate)

    return _run(request, app, principal, key, body, effect)


@router.post("", status_code=201)
def register(request: Request, app: AppDep, body: RegisterReferral, key: IdempotencyKey,
             principal: Annotated[Principal, Depends(authorized(Action.REGISTER_REFERRAL))]) -> JSONResponse:
    """A referred organization signed up with a code (the signup system or an operator calls this
    once the organization exists). Self-referrals and bursts are flagged: they wait for review
    instead of converting. An organization is referred once (409 ``already_referred``)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, uow.referrals.register(principal.program_id, body, principal.idempotency_scope)

    return _run(request, app, principal, key, body, effect)


@router.get("")
def list_referrals(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
                   status: ReferralStatus | None = None) -> dict[str, Any]:
    """``status=held`` is the operators' review queue."""
    with app.read() as uow:
        rows = uow.referral_store.referrals(principal.program_id, visible=Scope.of(principal, uow).organizations,
                                            participant_id=_mine(principal), after=pg.after, limit=pg.limit,
                                            status=status.value if status else None)
    return paged([view(row) for row in rows], pg)


@router.get("/{referral_id}")
def get_referral(app: AppDep, referral_id: PathId, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        _referral(uow, principal, referral_id)
        return uow.referrals.referral(principal.program_id, referral_id)


@router.post("/{referral_id}/approve")
def approve(request: Request, app: AppDep, referral_id: PathId, key: IdempotencyKey, principal: Reviewer,
            body: Review | None = None) -> JSONResponse:
    """Clear a held referral: it converts now and the derived events reward both sides."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _referral(uow, principal, referral_id)
        return 200, uow.referrals.approve(principal.program_id, referral_id, principal.idempotency_scope,
                                          body.note if body else "")

    return _run(request, app, principal, key, body, effect)


@router.post("/{referral_id}/reject")
def reject(request: Request, app: AppDep, referral_id: PathId, body: Reason, key: IdempotencyKey,
           principal: Reviewer) -> JSONResponse:
    """Refuse a held or waiting referral: nothing is ever credited for it."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _referral(uow, principal, referral_id)
        return 200, uow.referrals.reject(principal.program_id, referral_id, principal.idempotency_scope,
                                         body.reason)

    return _run(request, app, principal, key, body, effect)
