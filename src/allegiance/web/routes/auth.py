"""Logging in and out. Both are POSTs with the CSRF token; a wrong email or a wrong password get the
same message (no telling which accounts exist)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import RedirectResponse, Response

from allegiance.web.auth import CsrfChecked, csrf_token, get_allegiance, log_in, log_out, safe_next
from allegiance.web.rendering import render
from allegiance.web.routing import web_router

router = web_router()

WRONG_CREDENTIALS = "Wrong email or password."


def _form(request: Request, *, email: str = "", next_url: str = "", error: str | None = None,
          status: int = 200) -> Response:
    return render(request, "login.html", {"operator": None, "csrf": csrf_token(request), "email": email,
                                          "next": safe_next(next_url, default=""), "error": error}, status=status)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if isinstance(request.session.get("uid"), int):
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, next_url=next or "")


@router.post("/login", dependencies=[CsrfChecked])
def login(request: Request, email: Annotated[str, Form(max_length=254)] = "",
          password: Annotated[str, Form(max_length=1024)] = "",
          next: Annotated[str, Form(max_length=2000)] = "") -> Response:
    if not email.strip() or not password:
        return _form(request, email=email, next_url=next, error="Enter your email and password.", status=422)
    with get_allegiance(request).read() as uow:
        user = uow.access.authenticate(email.strip(), password)
    if user is None:
        return _form(request, email=email, next_url=next, error=WRONG_CREDENTIALS, status=422)
    log_in(request, int(user["id"]))
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/login", status_code=303)
