"""Redemptions for operators: the approval queue (and the other states as tabs), one redemption with
its history, and the moves an operator makes — approve, reject with a reason, fulfil.

Each move is a POST with the CSRF token that answers with a redirect to the redemption (post /
redirect / get), so a reload never repeats it; a second approval of the same redemption is refused by
its state machine (``InvalidTransition``) and shown on the page. The organization admins' pages
(``routes.approvals``) reuse the views here with their narrower reach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Form, Query, Request
from starlette.responses import RedirectResponse, Response

from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.cursors import decode_cursor
from allegiance.kernel.errors import AllegianceError, NotFound
from allegiance.rewards.model import RedemptionStatus
from allegiance.rewards.policy import Actor, Requester
from allegiance.storage import web_queries
from allegiance.storage.tables_rewards import redemptions as redemptions_table
from allegiance.web.auth import CsrfChecked, OperatorDep, get_allegiance
from allegiance.web.pagination import window
from allegiance.web.rendering import is_fragment, render, with_query
from allegiance.web.routing import web_router

router = web_router()

PAGE = 50
QUEUES = ("pending_approval", "approved")  # read oldest first: first come, first served
NOTICES = {"approved": "Approved.", "rejected": "Rejected: the points, the stock and the gift allowance are released.",
           "fulfilled": "Marked as delivered: the points are spent."}
Cursor = Annotated[str | None, Query(max_length=200)]
Reason = Annotated[str, Form(max_length=2000)]


def tab(status: str | None) -> str:
    """An unknown status in the address means the approval queue, not an error page."""
    return status if status in {s.value for s in RedemptionStatus} else "pending_approval"


def list_context(uow: UnitOfWork, program_id: int, *, base: str, status: str, visible: set[int] | None,
                 waiting_for: str | None, cursor: str | None) -> dict[str, Any]:
    """Rows of one status (three queries: rows, counts per status — whatever the number of rows)."""
    newest_first = status not in QUEUES
    page = window(web_queries.redemptions(uow.conn, program_id, visible=visible, status=status,
                                          waiting_for=waiting_for, cursor=decode_cursor(cursor),
                                          newest_first=newest_first, limit=PAGE), PAGE)
    counts = web_queries.status_counts(uow.conn, redemptions_table, program_id, visible)
    return {"redemptions": page.items, "status": status, "counts": counts, "base": base,
            "statuses": [s.value for s in RedemptionStatus if s is not RedemptionStatus.REQUESTED],
            "next_url": with_query(base, status=status, cursor=page.next_cursor) if page.next_cursor else None}


@router.get("/redemptions")
def redemption_list(request: Request, operator: OperatorDep, status: Annotated[str | None, Query(max_length=30)] = None,
                    cursor: Cursor = None) -> Response:
    with get_allegiance(request).read() as uow:
        context = list_context(uow, operator.program_id, base="/redemptions", status=tab(status), visible=None,
                               waiting_for=None, cursor=cursor)
    context.update(operator=operator, title="Redemptions", tabs=True)
    if is_fragment(request):
        return render(request, "partials/redemption_rows.html", context)
    return render(request, "redemptions/list.html", context)


def detail_context(uow: UnitOfWork, program_id: int, redemption_id: int) -> dict[str, Any]:
    redemption = uow.rewards.redemption(program_id, redemption_id)
    people = [i for i in (redemption["participant_id"], redemption["recipient_participant_id"]) if i]
    orgs, persons = web_queries.names(uow.conn, program_id, [redemption["organization_id"]], people)
    return {"redemption": redemption, "organization_name": orgs.get(redemption["organization_id"], ""),
            "people": persons}


def _operator_moves(redemption: dict[str, Any]) -> dict[str, bool]:
    pending = redemption["status"] == "pending_approval"
    return {"approve": pending, "reject": pending, "fulfil": redemption["status"] == "approved"}


def show(request: Request, who: Any, context: dict[str, Any], *, base: str, moves: dict[str, bool],
         error: AllegianceError | None = None, done: str | None = None, reason: str = "", note: str = "") -> Response:
    """The detail page; after a refused move it comes back with the reason next to the form."""
    on_field = error is not None and error.field in ("reason", "note")
    return render(request, "redemptions/detail.html", {
        **context, "operator": who, "base": base, "moves": moves, "reason": reason, "note": note,
        "error": error.message if error is not None and not on_field else None,
        "field_error": error.message if error is not None and on_field else None,
        "error_field": error.field if error is not None and on_field else None, "notice": NOTICES.get(done or ""),
    }, status=error.status if error is not None else 200)


@router.get("/redemptions/{redemption_id}")
def redemption_detail(request: Request, operator: OperatorDep, redemption_id: int,
                      done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    with get_allegiance(request).read() as uow:
        context = detail_context(uow, operator.program_id, redemption_id)
    return show(request, operator, context, base="/redemptions", moves=_operator_moves(context["redemption"]),
                done=done)


def operator_actor(operator: Any) -> Actor:
    return Actor(Requester.OPERATOR, f"user:{operator.user['id']}")


def perform(request: Request, who: Any, redemption_id: int, *, base: str, done: str,
            act: Callable[[UnitOfWork], Any], check: Callable[[UnitOfWork], None],
            moves: Callable[[dict[str, Any]], dict[str, bool]], reason: str = "", note: str = "") -> Response:
    """Run one move in its own transaction; a refusal re-renders the page with the reason."""
    allegiance = get_allegiance(request)
    try:
        with allegiance.write() as uow:
            check(uow)
            act(uow)
    except NotFound:
        raise
    except AllegianceError as exc:
        with allegiance.read() as uow:
            context = detail_context(uow, who.program_id, redemption_id)
        return show(request, who, context, base=base, moves=moves(context["redemption"]), error=exc,
                    reason=reason, note=note)
    return RedirectResponse(with_query(f"{base}/{redemption_id}", done=done), status_code=303)


def _exists(program_id: int, redemption_id: int) -> Callable[[UnitOfWork], None]:
    def check(uow: UnitOfWork) -> None:
        if uow.reward_store.redemption(program_id, redemption_id) is None:
            raise NotFound(f"redemption {redemption_id} not found")
    return check


@router.post("/redemptions/{redemption_id}/approve", dependencies=[CsrfChecked])
def approve(request: Request, operator: OperatorDep, redemption_id: int) -> Response:
    program_id = operator.program_id
    return perform(request, operator, redemption_id, base="/redemptions", done="approved",
                   check=_exists(program_id, redemption_id), moves=_operator_moves,
                   act=lambda uow: uow.rewards.approve(program_id, redemption_id, operator_actor(operator)))


@router.post("/redemptions/{redemption_id}/reject", dependencies=[CsrfChecked])
def reject(request: Request, operator: OperatorDep, redemption_id: int, reason: Reason = "") -> Response:
    program_id = operator.program_id
    return perform(request, operator, redemption_id, base="/redemptions", done="rejected", reason=reason,
                   check=_exists(program_id, redemption_id), moves=_operator_moves,
                   act=lambda uow: uow.rewards.reject(program_id, redemption_id, operator_actor(operator), reason))


@router.post("/redemptions/{redemption_id}/fulfil", dependencies=[CsrfChecked])
def fulfil(request: Request, operator: OperatorDep, redemption_id: int, note: Reason = "") -> Response:
    program_id = operator.program_id
    return perform(request, operator, redemption_id, base="/redemptions", done="fulfilled", note=note,
                   check=_exists(program_id, redemption_id), moves=_operator_moves,
                   act=lambda uow: uow.rewards.fulfil(program_id, redemption_id, operator_actor(operator), note))
