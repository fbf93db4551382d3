"""The route class of every page: turns failures into HTML pages and adds the security headers.

The API's exception handlers answer JSON problems app-wide; pages must not, so each page route
catches its own failures here — a missing (or another program's) object is a 404 page, a bad
cursor or parameter a 400 page, a POST without its CSRF token a 403 page, no session a redirect to
the login page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from allegiance.kernel.errors import AllegianceError, NotFound, ValidationFailed
from allegiance.web.auth import AccessWithdrawn, CsrfFailed, LoginRequired, NoProgram, WrongArea, login_url
from allegiance.web.rendering import render

SECURITY_HEADERS = {
    # Scripts and styles come only from /static: no inline code, so injected markup cannot run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show balances and people: never kept by a shared cache
}


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", {"operator": None, "status": status, "title": title, "message": message},
                  status=status)


def _failure(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return RedirectResponse(login_url(exc.next_url), status_code=303)
    if isinstance(exc, WrongArea):
        return RedirectResponse(exc.url, status_code=303)
    if isinstance(exc, AccessWithdrawn):
        return error_page(request, 403, "No longer an organization admin",
                          "Your sign-in belongs to a person who is no longer an admin of their organization. "
                          "Ask the program's operator if this is a mistake.")
    if isinstance(exc, CsrfFailed):
        return error_page(request, 403, "Form expired",
                          "This form was not sent from a page of this site or has expired. "
                          "Go back, reload the page and try again.")
    if isinstance(exc, NoProgram):
        return error_page(request, 200, "No program yet",
                          "There is no loyalty program to show. Create one with "
                          "'allegiance programs create', then reload this page.")
    if isinstance(exc, NotFound):
        return error_page(request, 404, "Not found", exc.message)
    if isinstance(exc, AllegianceError):  # on a page, bad input came from a link: a bad request
        where = f"{exc.field}: " if exc.field else ""
        status = 400 if isinstance(exc, ValidationFailed) else exc.status
        return error_page(request, status, "Bad request" if status == 400 else "Cannot show this", where + exc.message)
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e["loc"] and e["loc"][0] == "path" for e in errors):
        return error_page(request, 404, "Not found", "There is no page at this address.")
    first = errors[0] if errors else {"loc": ("request",), "msg": "invalid request"}
    return error_page(request, 400, "Bad request", f"{first['loc'][-1]}: {first['msg']}")


class WebRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except (LoginRequired, WrongArea, AccessWithdrawn, CsrfFailed, NoProgram, AllegianceError,
                    RequestValidationError) as exc:
                response = _failure(request, exc)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page


def web_router() -> APIRouter:
    """Every page module builds its router with this: HTML errors, headers, hidden from OpenAPI."""
    return APIRouter(route_class=WebRoute, include_in_schema=False)
