from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.schemas import ParticipantCreate, ParticipantLeave, ParticipantUpdate
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.storage import queries

router = APIRouter(prefix="/participants", tags=["participants"])


def _visible(uow: UnitOfWork, principal: Principal, participant_id: int) -> dict[str, Any]:
    participant = uow.program_store.participant(principal.program_id, participant_id)
    if participant is None or not Scope.of(principal, uow).sees_participant(participant):
        raise NotFound(f"participant {participant_id} not found")
    return participant


@router.get("")
def list_participants(
    app: AppDep,
    principal: Annotated[Principal, Depends(authorized(Action.READ_PEOPLE))],
    pg: Annotated[Page, Depends(page)],
    organization_id: QueryId = None,
    role: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        only = principal.participant_id if principal.role is KeyRole.PARTICIPANT else None
        items = queries.participants(uow.conn, principal.program_id, visible=scope.organizations, after=pg.after,
                                     limit=pg.limit, organization_id=organization_id, role=role, status=status,
                                     only_id=only)
    return paged(items, pg)


@router.post("", status_code=201)
def create_participant(app: AppDep, body: ParticipantCreate,
                       principal: Annotated[Principal, Depends(authorized(Action.WRITE_PEOPLE))]) -> dict[str, Any]:
    values = body.model_dump(mode="json")
    values["birthday"] = body.birthday
    with app.write() as uow:
        scope = Scope.of(principal, uow)
        if not scope.sees_organization(body.organization_id):
            raise ValidationFailed(f"organization {body.organization_id} does not exist", field="organization_id")
        return uow.programs.create_participant(principal.program_id, values)


@router.get("/{participant_id}")
def get_participant(app: AppDep, participant_id: PathId,
                    principal: Annotated[Principal, Depends(authorized(Action.READ_PEOPLE))]) -> dict[str, Any]:
    with app.read() as uow:
        return _visible(uow, principal, participant_id)


@router.patch("/{participant_id}")
def update_participant(app: AppDep, participant_id: PathId, body: ParticipantUpdate,
                       principal: Annotated[Principal, Depends(authorized(Action.WRITE_PEOPLE))]) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    if "birthday" in changes:
        changes["birthday"] = body.birthday
    for name in ("name", "role", "is_org_admin", "consents"):
        if name in changes and changes[name] is None:
            raise ValidationFailed("cannot be null", field=name)
    with app.write() as uow:
        _visible(uow, principal, participant_id)
        return uow.programs.update_participant(principal.program_id, participant_id, changes)


@router.post("/{participant_id}/leave")
def participant_leaves(app: AppDep, participant_id: PathId, body: ParticipantLeave,
                       principal: Annotated[Principal, Depends(authorized(Action.WRITE_PEOPLE))]) -> dict[str, Any]:
    """Record that the person left their organization; the program's leaver policy is posted."""
    with app.write() as uow:
        _visible(uow, principal, participant_id)
        uow.access.forget_principals_on_commit()  # the leaver's keys stop working at once
        return uow.programs.participant_left(principal.program_id, participant_id, body.reason)
