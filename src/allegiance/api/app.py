"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from allegiance import __version__
from allegiance.api import problems
from allegiance.api.idempotency import InFlight
from allegiance.api.routes import accounts, events, holds, keys, organizations, participants, programs, transactions
from allegiance.bootstrap import Allegiance


class BodyLimit(BaseHTTPMiddleware):
    """Refuse oversized bodies early (413) instead of parsing them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            return problems.problem(413, "payload_too_large", f"the body may be at most {self.max_bytes} bytes")
        return await call_next(request)


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    for module in (programs, organizations, participants, accounts, transactions, holds, events, keys):
        router.include_router(module.router)
    return router


def create_api(allegiance: Allegiance) -> FastAPI:
    app = FastAPI(title="Allegiance API", version=__version__,
                  description="B2B loyalty programs: organizations, people, a provable points ledger.")
    app.state.allegiance = allegiance
    app.state.in_flight = InFlight()
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=allegiance.settings.max_body_bytes)
    app.include_router(api_router())

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        from sqlalchemy import text

        with allegiance.read() as uow:
            uow.conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ok", "database": allegiance.db.dialect})

    return app
