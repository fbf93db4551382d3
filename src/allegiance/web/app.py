"""Adds the operator pages to the API application (one process serves both)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from allegiance.bootstrap import Allegiance
from allegiance.config import Environment
from allegiance.route_gates import gate_included_routers
from allegiance.web.auth import SESSION_COOKIE, SESSION_MAX_AGE
from allegiance.web.rendering import STATIC_DIR
from allegiance.web.routes import MODULES


def mount_web(app: FastAPI, allegiance: Allegiance) -> None:
    """Pages at ``/``, ``/login``, ``/organizations``..., assets at ``/static``; none in the OpenAPI schema.

    The session cookie is signed with ``settings.secret_key`` (which the settings refuse to leave at a
    placeholder outside development) and marked Secure in production, where TLS is expected.
    """
    app.state.allegiance = allegiance
    app.add_middleware(
        SessionMiddleware,
        secret_key=allegiance.settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=allegiance.settings.environment is Environment.PRODUCTION,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in MODULES:
        app.include_router(module.router)
    gate_included_routers(app.router.routes)  # the pages come after the API's routes: skip those by prefix
