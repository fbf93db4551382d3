"""Organization admins' pages: the redemptions of their organization (and the sites below it) that
wait for the manager's approval, one such redemption, approve and reject with a reason.

Reach is checked on every read and every move: a redemption of another organization answers 404,
exactly like a missing one. An admin gives only the manager step — a redemption waiting for the
operator alone is not theirs to approve or reject.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound
from allegiance.rewards.errors import InvalidTransition
from allegiance.rewards.model import Step
from allegiance.web.auth import CsrfChecked, get_allegiance
from allegiance.web.org_admin import OrgAdmin, OrgAdminDep
from allegiance.web.rendering import is_fragment, render
from allegiance.web.routes.redemptions import Cursor, Reason, detail_context, list_context, perform, show
from allegiance.web.routing import web_router

router = web_router()

BASE = "/my/approvals"


def _waits_for_manager(redemption: dict[str, Any]) -> bool:
    return redemption["status"] == "pending_approval" and Step.MANAGER.value in redemption["approvals_outstanding"]


def _moves(redemption: dict[str, Any]) -> dict[str, bool]:
    mine = _waits_for_manager(redemption)
    return {"approve": mine, "reject": mine, "fulfil": False}


def _within_reach(uow: UnitOfWork, admin: OrgAdmin, redemption_id: int) -> dict[str, Any]:
    row = uow.reward_store.redemption(admin.program_id, redemption_id)
    if row is None or row["organization_id"] not in admin.organizations:
        raise NotFound(f"redemption {redemption_id} not found")
    return row


@router.get(BASE)
def approval_list(request: Request, admin: OrgAdminDep, cursor: Cursor = None) -> Response:
    with get_allegiance(request).read() as uow:
        context = list_context(uow, admin.program_id, base=BASE, status="pending_approval",
                               visible=admin.organizations, waiting_for=Step.MANAGER.value, cursor=cursor)
    context.update(operator=admin, title="Approvals", tabs=False)
    if is_fragment(request):
        return render(request, "partials/redemption_rows.html", context)
    return render(request, "redemptions/list.html", context)


@router.get(BASE + "/{redemption_id}")
def approval_detail(request: Request, admin: OrgAdminDep, redemption_id: int,
                    done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    with get_allegiance(request).read() as uow:
        _within_reach(uow, admin, redemption_id)
        context = detail_context(uow, admin.program_id, redemption_id)
    return show(request, admin, context, base=BASE, moves=_moves(context["redemption"]), done=done)


def _check(admin: OrgAdmin, redemption_id: int) -> Any:
    def check(uow: UnitOfWork) -> None:
        row = _within_reach(uow, admin, redemption_id)
        if not _waits_for_manager(row):
            raise InvalidTransition("this redemption does not wait for your approval", state=row["status"])
    return check


@router.post(BASE + "/{redemption_id}/approve", dependencies=[CsrfChecked])
def approve(request: Request, admin: OrgAdminDep, redemption_id: int) -> Response:
    return perform(request, admin, redemption_id, base=BASE, done="approved", check=_check(admin, redemption_id),
                   moves=_moves, act=lambda uow: uow.rewards.approve(admin.program_id, redemption_id, admin.actor))


@router.post(BASE + "/{redemption_id}/reject", dependencies=[CsrfChecked])
def reject(request: Request, admin: OrgAdminDep, redemption_id: int, reason: Reason = "") -> Response:
    return perform(request, admin, redemption_id, base=BASE, done="rejected", reason=reason,
                   check=_check(admin, redemption_id), moves=_moves,
                   act=lambda uow: uow.rewards.reject(admin.program_id, redemption_id, admin.actor, reason))
