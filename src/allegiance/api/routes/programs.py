from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, authorized
from allegiance.programs.model import ProgramSettings

router = APIRouter(prefix="/programs", tags=["programs"])


def _public(program: dict[str, Any]) -> dict[str, Any]:
    return {k: program[k] for k in ("id", "slug", "name", "settings", "created_at")}


@router.get("")
def list_programs(app: AppDep,
                  principal: Annotated[Principal, Depends(authorized(Action.READ_PROGRAM))]) -> dict[str, Any]:
    """The programs this key belongs to (a key is always scoped to one program)."""
    with app.read() as uow:
        program = uow.program_store.program(principal.program_id)
    return {"items": [_public(program)] if program else [], "next_cursor": None}


@router.get("/current")
def current_program(app: AppDep,
                    principal: Annotated[Principal, Depends(authorized(Action.READ_PROGRAM))]) -> dict[str, Any]:
    with app.read() as uow:
        program = uow.program_store.program(principal.program_id)
    assert program is not None
    return _public(program)


@router.put("/current/settings")
def configure_program(app: AppDep, body: ProgramSettings,
                      principal: Annotated[Principal, Depends(authorized(Action.CONFIGURE_PROGRAM))]) -> dict[str, Any]:
    """Replace the program's settings (units, roles, split, pool spenders, leaver and expiry
    policies, hold lifetime). Units and roles can be added, never removed."""
    with app.write() as uow:
        return _public(uow.programs.configure(principal.program_id, body))
