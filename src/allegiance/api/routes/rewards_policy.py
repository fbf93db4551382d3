"""Approval policies: the program's, and each organization's override of it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, PathId, Scope, authorized
from allegiance.kernel.errors import NotFound
from allegiance.rewards.model import ApprovalPolicy, PolicyOverride

router = APIRouter(prefix="/approval-policy", tags=["rewards"])


@router.get("")
def program_policy(app: AppDep,
                   principal: Annotated[Principal, Depends(authorized(Action.READ_REWARDS))]) -> dict[str, Any]:
    with app.read() as uow:
        return uow.rewards.program_policy(principal.program_id).model_dump(mode="json")


@router.put("")
def set_program_policy(app: AppDep, body: ApprovalPolicy,
                       principal: Annotated[Principal, Depends(authorized(Action.CONFIGURE_PROGRAM))]
                       ) -> dict[str, Any]:
    """Replace the program's policy (a PUT: sending it twice changes nothing more)."""
    with app.write() as uow:
        policy = uow.rewards.set_program_policy(principal.program_id, body, principal.idempotency_scope)
    return policy.model_dump(mode="json")


def _organization(app: Any, principal: Principal, organization_id: int) -> dict[str, Any]:
    with app.read() as uow:
        if not Scope.of(principal, uow).sees_organization(organization_id):
            raise NotFound(f"organization {organization_id} not found", field="organization_id")
        uow.programs.organization(principal.program_id, organization_id)
        override = uow.rewards.override(principal.program_id, organization_id)
        return {"organization_id": organization_id,
                "program": uow.rewards.program_policy(principal.program_id).model_dump(mode="json"),
                "override": override.model_dump(mode="json", exclude_none=True) if override else None,
                "effective": uow.rewards.policy_for(principal.program_id, organization_id).model_dump(mode="json")}


@router.get("/organizations/{organization_id}")
def organization_policy(app: AppDep, organization_id: PathId,
                        principal: Annotated[Principal, Depends(authorized(Action.READ_REWARDS))]) -> dict[str, Any]:
    """The program's policy, this organization's override, and the effective result."""
    return _organization(app, principal, organization_id)


@router.put("/organizations/{organization_id}")
def set_organization_policy(app: AppDep, organization_id: PathId, body: PolicyOverride,
                            principal: Annotated[Principal, Depends(authorized(Action.SET_REWARD_POLICY))]
                            ) -> dict[str, Any]:
    """An org admin sets their organization's override (fields left out inherit the program's)."""
    with app.write() as uow:
        if not Scope.of(principal, uow).sees_organization(organization_id):
            raise NotFound(f"organization {organization_id} not found", field="organization_id")
        uow.rewards.set_override(principal.program_id, organization_id, body, principal.idempotency_scope)
    return _organization(app, principal, organization_id)
