"""The front door and the program switch in the header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from allegiance.web.auth import CsrfChecked, OperatorDep, choose_program
from allegiance.web.routing import web_router

router = web_router()


@router.get("/")
def home(request: Request) -> Response:
    target = "/organizations" if isinstance(request.session.get("uid"), int) else "/login"
    return RedirectResponse(target, status_code=303)


@router.post("/program", dependencies=[CsrfChecked])
def switch_program(operator: OperatorDep, program_id: Annotated[int, Form(ge=1)], request: Request) -> Response:
    """Operators are staff of the operator: any existing program may be chosen; others are ignored.
    Always lands on the organization list, since the page one was on belongs to the old program."""
    if any(p["id"] == program_id for p in operator.programs):
        choose_program(request, program_id)
    return RedirectResponse("/organizations", status_code=303)
