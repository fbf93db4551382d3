from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, authorized

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
