"""Co-op marketing funds (issue 4): the program's co-op terms, each organization's fund, planned
activities for pre-approval, and claims — submit, attach proofs, approve / reject, settle.

Partner keys (org admins, participants) act for their own organization; reviewing, settling and
allocating are the operator's. Objects of other organizations answer 404, like missing ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.coop.model import ClaimCreate, ClaimStatus, CoopSettings, PlanCreate, PlanStatus, ProofUpload
from allegiance.coop.service import Actor
from allegiance.kernel.errors import NotFound

router = APIRouter(prefix="/coop", tags=["coop"])
Reader = Annotated[Principal, Depends(authorized(Action.READ_COOP))]
Claimant = Annotated[Principal, Depends(authorized(Action.CLAIM_COOP))]
Reviewer = Annotated[Principal, Depends(authorized(Action.REVIEW_COOP))]


class Allocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: int = Field(gt=0, lt=10**13, description="in the co-op unit's minor scale")
    memo: str = Field(default="", max_length=500)


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brands: list[str] | None = Field(default=None, max_length=50,
                                     description="the brands the operator counted in the material, if the claim's "
                                                 "list is wrong; the reimbursement is recomputed")
    note: str = Field(default="", max_length=2000)


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class Settlement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str | None = Field(default=None, max_length=100, description="credit note or payment reference")


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.idempotency_scope, principal.role is KeyRole.OPERATOR, principal.organization_id,
                 principal.participant_id)


def _organization(uow: UnitOfWork, principal: Principal, organization_id: int | None) -> None:
    if organization_id is not None and not Scope.of(principal, uow).sees_organization(organization_id):
        raise NotFound(f"organization {organization_id} not found", field="organization_id")


def _claim(uow: UnitOfWork, principal: Principal, claim_id: int) -> dict[str, Any]:
    row = uow.coop_store.claim(principal.program_id, claim_id)
    if row is None or not Scope.of(principal, uow).sees_organization(row["organization_id"]):
        raise NotFound(f"claim {claim_id} not found", field="claim_id")
    return row


def _plan(uow: UnitOfWork, principal: Principal, plan_id: int) -> dict[str, Any]:
    row = uow.coop_store.plan(principal.program_id, plan_id)
    if row is None or not Scope.of(principal, uow).sees_organization(row["organization_id"]):
        raise NotFound(f"plan {plan_id} not found", field="plan_id")
    return row


# -- settings and funds ---------------------------------------------------------------------------

@router.get("/settings")
def get_settings(app: AppDep, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        return uow.coop.settings(principal.program_id).model_dump(mode="json")


@router.put("/settings")
def put_settings(app: AppDep, body: CoopSettings,
                 principal: Annotated[Principal, Depends(authorized(Action.CONFIGURE_PROGRAM))]) -> dict[str, Any]:
    """Replace the program's co-op terms (a PUT: sending it twice changes nothing more). Applies to
    claims submitted or approved from now on; approved amounts never change."""
    with app.write() as uow:
        return uow.coop.set_settings(principal.program_id, body, principal.idempotency_scope).model_dump(mode="json")


@router.get("/organizations/{organization_id}/fund")
def get_fund(app: AppDep, organization_id: PathId, principal: Reader,
             year: Annotated[int | None, Query(ge=2000, le=2200)] = None) -> dict[str, Any]:
    """The fund balance (what approvals may still reserve) and the year's budget use."""
    with app.read() as uow:
        _organization(uow, principal, organization_id)
        return uow.coop.fund(principal.program_id, organization_id, year or app.clock.now().year)


@router.post("/organizations/{organization_id}/allocations", status_code=201)
def allocate(request: Request, app: AppDep, organization_id: PathId, body: Allocation, key: IdempotencyKey,
             principal: Annotated[Principal, Depends(authorized(Action.ALLOCATE_COOP))]) -> JSONResponse:
    """MDF granted directly: a ledger transaction from the program's issue account into the fund."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, uow.coop.allocate(principal.program_id, organization_id, body.amount, body.memo,
                                      principal.idempotency_scope)

    return _run(request, app, principal, key, body, effect)


# -- plans ------------------------------------------------------------------------------------------

@router.get("/plans")
def list_plans(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
               status: PlanStatus | None = None) -> dict[str, Any]:
    with app.read() as uow:
        rows = uow.coop_store.plans(principal.program_id, visible=Scope.of(principal, uow).organizations,
                                    after=pg.after, limit=pg.limit, status=status.value if status else None)
    return paged(rows, pg)


@router.post("/plans", status_code=201)
def create_plan(request: Request, app: AppDep, body: PlanCreate, key: IdempotencyKey,
                principal: Claimant) -> JSONResponse:
    """A planned activity sent for pre-approval (required before claiming when the terms say so)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _organization(uow, principal, body.organization_id)
        return 201, uow.coop.create_plan(principal.program_id, actor_of(principal), body)

    return _run(request, app, principal, key, body, effect)


@router.post("/plans/{plan_id}/approve")
def approve_plan(request: Request, app: AppDep, plan_id: PathId, key: IdempotencyKey,
                 principal: Reviewer) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _plan(uow, principal, plan_id)
        return 200, uow.coop.review_plan(principal.program_id, plan_id, actor_of(principal), True)

    return _run(request, app, principal, key, None, effect)


@router.post("/plans/{plan_id}/reject")
def reject_plan(request: Request, app: AppDep, plan_id: PathId, body: Reason, key: IdempotencyKey,
                principal: Reviewer) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _plan(uow, principal, plan_id)
        return 200, uow.coop.review_plan(principal.program_id, plan_id, actor_of(principal), False, body.reason)

    return _run(request, app, principal, key, body, effect)


# -- claims -----------------------------------------------------------------------------------------

@router.get("/claims")
def list_claims(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
                status: ClaimStatus | None = None, organization_id: QueryId = None) -> dict[str, Any]:
    """Operators: every claim (``status=submitted`` is the review queue); partners: their own."""
    with app.read() as uow:
        rows = uow.coop_store.claims(principal.program_id, visible=Scope.of(principal, uow).organizations,
                                     after=pg.after, limit=pg.limit, status=status.value if status else None,
                                     organization_id=organization_id)
        items = [uow.coop.view(row) for row in rows]
    return paged(items, pg)


@router.post("/claims", status_code=201)
def create_claim(request: Request, app: AppDep, body: ClaimCreate, key: IdempotencyKey,
                 principal: Claimant) -> JSONResponse:
    """Submit a claim (or save a ``draft``). The reimbursement follows the program's formula; a claim
    past the yearly budget or the fund is refused (409 ``coop_limit_exceeded`` naming the ``limit``)
    or capped, as the terms say; the same invoice twice is 409 ``duplicate_invoice``."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _organization(uow, principal, body.organization_id)
        return 201, uow.coop.create_claim(principal.program_id, actor_of(principal), body)

    return _run(request, app, principal, key, body, effect)


@router.get("/claims/{claim_id}")
def get_claim(app: AppDep, claim_id: PathId, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        _claim(uow, principal, claim_id)
        return uow.coop.claim(principal.program_id, claim_id)


def _move(request: Request, app: Any, principal: Principal, key: str | None, body: Any, claim_id: int,
          act: Any, status: int = 200) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        _claim(uow, principal, claim_id)
        return status, act(uow, actor_of(principal))

    return _run(request, app, principal, key, body, effect)


@router.post("/claims/{claim_id}/submit")
def submit_claim(request: Request, app: AppDep, claim_id: PathId, key: IdempotencyKey,
                 principal: Claimant) -> JSONResponse:
    return _move(request, app, principal, key, None, claim_id,
                 lambda uow, actor: uow.coop.submit(principal.program_id, claim_id, actor))


@router.post("/claims/{claim_id}/proofs", status_code=201)
def add_proof(request: Request, app: AppDep, claim_id: PathId, body: ProofUpload, key: IdempotencyKey,
              principal: Claimant) -> JSONResponse:
    """Attach a proof (layout, photo, invoice) as base64: PDF, PNG, JPEG or WebP by default, checked
    by content, within the program's size limit; stored with its SHA-256 (the same file twice is
    stored once)."""
    return _move(request, app, principal, key, body, claim_id,
                 lambda uow, actor: uow.coop.add_proof(principal.program_id, claim_id, actor, body), status=201)


@router.get("/claims/{claim_id}/proofs/{proof_id}", response_class=Response)
def get_proof(app: AppDep, claim_id: PathId, proof_id: PathId, principal: Reader) -> Response:
    """The file as uploaded, always as an attachment and never sniffed, so it cannot run in a page."""
    with app.read() as uow:
        _claim(uow, principal, claim_id)
        proof = uow.coop.proof(principal.program_id, claim_id, proof_id)
    return Response(proof["content"], media_type=proof["content_type"], headers={
        "Content-Disposition": f'attachment; filename="proof-{proof["id"]}"', "X-Content-Type-Options": "nosniff",
        "Digest": f"sha-256={proof['sha256']}", "Content-Security-Policy": "default-src 'none'"})


@router.post("/claims/{claim_id}/approve")
def approve_claim(request: Request, app: AppDep, claim_id: PathId, key: IdempotencyKey, principal: Reviewer,
                  body: Approval | None = None) -> JSONResponse:
    """Approve: the yearly budget and the fund are reserved (a ledger hold) at once, so two
    approvals can never overdraw the fund."""
    approval = body or Approval()
    return _move(request, app, principal, key, body, claim_id,
                 lambda uow, actor: uow.coop.approve(principal.program_id, claim_id, actor, approval.brands,
                                                     approval.note))


@router.post("/claims/{claim_id}/reject")
def reject_claim(request: Request, app: AppDep, claim_id: PathId, body: Reason, key: IdempotencyKey,
                 principal: Reviewer) -> JSONResponse:
    return _move(request, app, principal, key, body, claim_id,
                 lambda uow, actor: uow.coop.reject(principal.program_id, claim_id, actor, body.reason))


@router.post("/claims/{claim_id}/settle")
def settle_claim(request: Request, app: AppDep, claim_id: PathId, key: IdempotencyKey, principal: Reviewer,
                 body: Settlement | None = None) -> JSONResponse:
    """Pay the approved amount out of the fund (the hold is posted, exactly once)."""
    reference = body.reference if body else None
    return _move(request, app, principal, key, body, claim_id,
                 lambda uow, actor: uow.coop.settle(principal.program_id, claim_id, actor, reference))
