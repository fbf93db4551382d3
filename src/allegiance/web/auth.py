"""Operator sessions and CSRF protection for the pages.

The session is Starlette's signed cookie (itsdangerous, keyed with ``settings.secret_key``; HttpOnly,
SameSite=Lax, Secure in production). It holds only ids — ``uid`` (user), ``pid`` (chosen program) and
``csrf`` — so the user row is re-read on every page: a deactivated user is out at their next click.

CSRF: every form that POSTs carries the session's token in a hidden field and the server compares it
in constant time; SameSite=Lax alone would still let a same-site page post. Logging in replaces the
whole session (and its token), so a token or session id planted before login is worthless after it.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from allegiance.bootstrap import Allegiance
from allegiance.programs.model import ProgramSettings
from allegiance.storage import web_queries
from allegiance.web.rendering import Money, with_query

SESSION_COOKIE = "allegiance_session"
SESSION_MAX_AGE = 12 * 60 * 60  # seconds; a working day, then log in again
CSRF_FIELD = "csrf_token"
ORG_ADMIN_HOME = "/my/approvals"


class LoginRequired(Exception):
    """No (valid) session: the route layer answers with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfFailed(Exception):
    """A POST without the session's CSRF token: answered with 403."""


class NoProgram(Exception):
    """Logged in, but no program exists yet: the page explains how to create one."""


class WrongArea(Exception):
    """An organization admin on an operator page, or the reverse: redirected to their own start page."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class AccessWithdrawn(Exception):
    """An organization admin's sign-in whose participant left or lost the admin flag: logged out, 403."""


def get_allegiance(request: Request) -> Allegiance:
    allegiance: Allegiance = request.app.state.allegiance
    return allegiance


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Dependency for every POST route: runs before the form fields are validated."""
    form = await request.form()
    sent, expected = form.get(CSRF_FIELD), request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or not hmac.compare_digest(
            sent.encode(), expected.encode()):
        raise CsrfFailed()


CsrfChecked = Depends(check_csrf)


def safe_next(value: str | None, default: str = "/organizations") -> str:
    """Only a local path may follow login (``//evil.example`` and ``https://...`` would be an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 32 for ch in value):
        return default
    return value


def login_url(next_url: str | None) -> str:
    target = safe_next(next_url, default="")
    return with_query("/login", next=target if target not in ("", "/") else None)


def log_in(request: Request, user_id: int) -> None:
    request.session.clear()
    request.session.update(uid=user_id, csrf=secrets.token_urlsafe(32))


def log_out(request: Request) -> None:
    request.session.clear()


def choose_program(request: Request, program_id: int) -> None:
    request.session["pid"] = program_id


@dataclass
class Operator:
    """The signed-in operator and the program the pages show, resolved once per request."""

    user: dict[str, Any]
    programs: list[dict[str, Any]]
    program: dict[str, Any] | None
    csrf: str
    settings: ProgramSettings | None = None
    money: Money = field(init=False)
    role_labels: dict[str, str] = field(init=False)
    area = "operator"  # which navigation the layout shows

    def __post_init__(self) -> None:
        self.money = Money(self.settings)
        self.role_labels = {r.code: r.label for r in self.settings.roles} if self.settings else {}

    @property
    def program_id(self) -> int:
        if self.program is None:
            raise NoProgram()
        return int(self.program["id"])


def _request_path(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def operator(request: Request) -> Operator:
    """Dependency of every page: the session's user (active) and program, or a redirect to login."""
    user_id = request.session.get("uid")
    if not isinstance(user_id, int):
        raise LoginRequired(_request_path(request))
    with get_allegiance(request).read() as uow:
        user = uow.access.user(user_id)
        programs = web_queries.programs(uow.conn) if user and user["is_active"] else []
    if user is None or not user["is_active"]:
        log_out(request)
        raise LoginRequired(_request_path(request))
    if user.get("participant_id") is not None:  # an organization admin: only the pages of web.org_admin
        raise WrongArea(ORG_ADMIN_HOME)
    chosen = request.session.get("pid")
    program = next((p for p in programs if p["id"] == chosen), programs[0] if programs else None)
    settings = ProgramSettings.model_validate(program["settings"]) if program else None
    user.pop("password_hash", None)
    return Operator(user=user, programs=programs, program=program, csrf=csrf_token(request), settings=settings)


OperatorDep = Annotated[Operator, Depends(operator)]
