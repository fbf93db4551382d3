"""Co-op claims for operators: the list by status (submitted ones are the review queue), one claim with
its proof files, and the review — approve (confirming the brands shown), reject with a reason, settle.

Proof files download as attachments (never shown inline, whatever a partner uploaded). Each move is a
POST with the CSRF token, answered with a redirect to the claim; a move the claim's state or the fund
refuses comes back on the page with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Form, Query, Request
from starlette.responses import RedirectResponse, Response

from allegiance.bootstrap import UnitOfWork
from allegiance.coop.model import ClaimStatus
from allegiance.coop.service import Actor
from allegiance.kernel.cursors import decode_cursor
from allegiance.kernel.errors import AllegianceError, NotFound
from allegiance.storage import web_queries
from allegiance.storage.tables_coop import coop_claims
from allegiance.web.auth import CsrfChecked, Operator, OperatorDep, get_allegiance
from allegiance.web.pagination import window
from allegiance.web.rendering import render, with_query
from allegiance.web.routing import web_router

router = web_router()

PAGE = 50
QUEUES = ("submitted", "approved")
NOTICES = {"approved": "Approved: the amount is reserved in the partner's co-op fund.",
           "rejected": "Rejected.", "settled": "Settled: the payout is posted from the fund."}
Note = Annotated[str, Form(max_length=2000)]


@router.get("/coop")
def claim_list(request: Request, operator: OperatorDep, status: Annotated[str | None, Query(max_length=20)] = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    chosen = status if status in {s.value for s in ClaimStatus} else "submitted"
    program_id = operator.program_id
    newest_first = chosen not in QUEUES
    with get_allegiance(request).read() as uow:
        page = window(web_queries.coop_claims(uow.conn, program_id, status=chosen, cursor=decode_cursor(cursor),
                                              newest_first=newest_first, limit=PAGE), PAGE)
        counts = web_queries.status_counts(uow.conn, coop_claims, program_id)
    return render(request, "coop/list.html", {
        "operator": operator, "claims": page.items, "status": chosen, "counts": counts,
        "statuses": [s.value for s in ClaimStatus],
        "next_url": with_query("/coop", status=chosen, cursor=page.next_cursor) if page.next_cursor else None})


def _show(request: Request, operator: Operator, claim_id: int, *, error: AllegianceError | None = None,
          done: str | None = None, values: dict[str, str] | None = None) -> Response:
    with get_allegiance(request).read() as uow:
        claim = uow.coop.claim(operator.program_id, claim_id)
        orgs, people = web_queries.names(uow.conn, operator.program_id, [claim["organization_id"]],
                                         [claim["participant_id"]] if claim["participant_id"] else [])
        settings = uow.coop.settings(operator.program_id)
    field_error = error is not None and error.field in ("reason", "brands", "reference")
    return render(request, "coop/detail.html", {
        "operator": operator, "claim": claim, "organization_name": orgs.get(claim["organization_id"], ""),
        "person_name": people.get(claim["participant_id"] or 0), "own_brands": settings.own_brands,
        "notice": NOTICES.get(done or ""), "values": values or {"brands": ", ".join(claim["brands"])},
        "error": error.message if error is not None and not field_error else None,
        "error_field": error.field if error is not None and field_error else None,
        "field_error": error.message if error is not None and field_error else None,
    }, status=error.status if error is not None else 200)


@router.get("/coop/claims/{claim_id}")
def claim_detail(request: Request, operator: OperatorDep, claim_id: int,
                 done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    return _show(request, operator, claim_id, done=done)


@router.get("/coop/claims/{claim_id}/proofs/{proof_id}")
def claim_proof(request: Request, operator: OperatorDep, claim_id: int, proof_id: int) -> Response:
    with get_allegiance(request).read() as uow:
        proof = uow.coop.proof(operator.program_id, claim_id, proof_id)  # NotFound for other programs' claims
    safe_name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in proof["filename"])[:120] or "proof"
    return Response(bytes(proof["content"]), media_type=proof["content_type"], headers={
        "Content-Disposition": f'attachment; filename="{safe_name}"', "X-Content-Type-Options": "nosniff"})


def _act(request: Request, operator: Operator, claim_id: int, done: str, act: Callable[[UnitOfWork, Actor], Any],
         values: dict[str, str]) -> Response:
    actor = Actor(ref=f"user:{operator.user['id']}", operator=True)
    try:
        with get_allegiance(request).write() as uow:
            act(uow, actor)
    except NotFound:
        raise
    except AllegianceError as exc:
        return _show(request, operator, claim_id, error=exc, values=values)
    return RedirectResponse(f"/coop/claims/{claim_id}?done={done}", status_code=303)


@router.post("/coop/claims/{claim_id}/approve", dependencies=[CsrfChecked])
def claim_approve(request: Request, operator: OperatorDep, claim_id: int, brands: Note = "",
                  note: Note = "") -> Response:
    """The brands the reviewer confirms on the material; the reimbursement is recomputed from them."""
    shown = [b.strip() for b in brands.split(",") if b.strip()]
    program_id = operator.program_id
    return _act(request, operator, claim_id, "approved",
                lambda uow, actor: uow.coop.approve(program_id, claim_id, actor, brands=shown, note=note),
                {"brands": brands, "note": note})


@router.post("/coop/claims/{claim_id}/reject", dependencies=[CsrfChecked])
def claim_reject(request: Request, operator: OperatorDep, claim_id: int, reason: Note = "") -> Response:
    program_id = operator.program_id
    return _act(request, operator, claim_id, "rejected",
                lambda uow, actor: uow.coop.reject(program_id, claim_id, actor, reason), {"reason": reason})


@router.post("/coop/claims/{claim_id}/settle", dependencies=[CsrfChecked])
def claim_settle(request: Request, operator: OperatorDep, claim_id: int,
                 reference: Annotated[str, Form(max_length=100)] = "") -> Response:
    program_id = operator.program_id
    return _act(request, operator, claim_id, "settled",
                lambda uow, actor: uow.coop.settle(program_id, claim_id, actor, reference.strip() or None),
                {"reference": reference})
