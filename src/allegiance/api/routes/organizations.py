from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.schemas import OrganizationCreate, OrganizationUpdate
from allegiance.kernel.errors import ValidationFailed
from allegiance.storage import queries

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.get("")
def list_organizations(
    app: AppDep,
    principal: Annotated[Principal, Depends(authorized(Action.READ_ORGS))],
    pg: Annotated[Page, Depends(page)],
    q: Annotated[str | None, Query(max_length=100, description="Search name or external id")] = None,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    parent_id: QueryId = None,
) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.organizations(uow.conn, principal.program_id, visible=scope.organizations, after=pg.after,
                                      limit=pg.limit, q=q, kind=kind, status=status, parent_id=parent_id)
    return paged(items, pg)


@router.post("", status_code=201)
def create_organization(app: AppDep, body: OrganizationCreate,
                        principal: Annotated[Principal, Depends(authorized(Action.WRITE_ORGS))]) -> dict[str, Any]:
    with app.write() as uow:
        return uow.programs.create_organization(principal.program_id, body.model_dump(mode="python"))


@router.get("/{organization_id}")
def get_organization(app: AppDep, organization_id: PathId,
                     principal: Annotated[Principal, Depends(authorized(Action.READ_ORGS))]) -> dict[str, Any]:
    with app.read() as uow:
        Scope.of(principal, uow).check_organization(organization_id)
        organization = uow.programs.organization(principal.program_id, organization_id)
        organization["children"] = queries.children(uow.conn, principal.program_id, organization_id)
        organization["ancestors"] = uow.program_store.ancestors(principal.program_id, organization_id)
    return organization


@router.patch("/{organization_id}")
def update_organization(app: AppDep, organization_id: PathId, body: OrganizationUpdate,
                        principal: Annotated[Principal, Depends(authorized(Action.WRITE_ORGS))]) -> dict[str, Any]:
    changes = body.model_dump(mode="python", exclude_unset=True)
    nullable = {"parent_id", "segment", "country", "locale", "joined_on", "left_on", "account_manager_id"}
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise ValidationFailed("cannot be null", field=name)
    with app.write() as uow:
        return uow.programs.update_organization(principal.program_id, organization_id, changes)
