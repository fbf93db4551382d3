from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, PathId, authorized
from allegiance.api.schemas import ApiKeyCreate
from allegiance.kernel.errors import NotFound, ValidationFailed

router = APIRouter(prefix="/api-keys", tags=["api keys"])


@router.get("")
def list_keys(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.MANAGE_KEYS))]) -> dict[str, Any]:
    with app.read() as uow:
        return {"items": uow.access.keys(principal.program_id)}


@router.post("", status_code=201)
def create_key(app: AppDep, body: ApiKeyCreate,
               principal: Annotated[Principal, Depends(authorized(Action.MANAGE_KEYS))]) -> dict[str, Any]:
    """Create a key; the secret is shown in this response only (it is stored hashed)."""
    with app.write() as uow:
        organization_id = body.organization_id
        if body.participant_id is not None and body.role is not KeyRole.PARTICIPANT:
            raise ValidationFailed("only participant keys name a participant", field="participant_id")
        if organization_id is not None and body.role is not KeyRole.ORG_ADMIN:
            raise ValidationFailed("only org_admin keys name an organization", field="organization_id")
        if body.role is KeyRole.ORG_ADMIN:
            if organization_id is None:
                raise ValidationFailed("an org_admin key needs its organization", field="organization_id")
            uow.programs.organization(principal.program_id, organization_id)  # 404 if not in this program
        if body.role is KeyRole.PARTICIPANT:
            if body.participant_id is None:
                raise ValidationFailed("a participant key needs its participant", field="participant_id")
            person = uow.program_store.participant(principal.program_id, body.participant_id)
            if person is None:
                raise ValidationFailed(f"participant {body.participant_id} does not exist", field="participant_id")
            if person["status"] == "left":
                raise ValidationFailed("the participant has left their organization", field="participant_id")
            organization_id = person["organization_id"]
        key_id, secret = uow.access.create_key(principal.program_id, body.name, body.role,
                                               organization_id=organization_id,
                                               participant_id=body.participant_id)
    return {"id": key_id, "name": body.name, "role": body.role.value, "key": secret,
            "organization_id": organization_id, "participant_id": body.participant_id}


@router.delete("/{key_id}", status_code=204)
def revoke_key(app: AppDep, key_id: PathId,
               principal: Annotated[Principal, Depends(authorized(Action.MANAGE_KEYS))]) -> Response:
    with app.write() as uow:
        if not uow.access.revoke_key(principal.program_id, key_id):
            raise NotFound(f"api key {key_id} not found")
    return Response(status_code=204)
