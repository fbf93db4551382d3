"""RFC 9457 problem bodies: every 4xx carries a stable ``code`` and, where it applies, the field."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from allegiance.kernel.errors import AllegianceError

PROBLEM_JSON = "application/problem+json"

HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
              422: "validation_failed", 429: "too_many_requests"}


def problem(status: int, code: str, detail: str, *, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://allegiance.dev/problems/{code}", "title": code.replace("_", " "),
                            "status": status, "code": code, "detail": detail}
    if field:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def location(loc: tuple[Any, ...] | list[Any]) -> str:
    """Pydantic's error location as a path a person reads: ``events[1].payload.amount``.

    ``[key]`` entries (a dict key that failed) are dropped: the path already names the key."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "[key]")]
    out = ""
    for part in parts:
        text = str(part)
        out += f"[{text}]" if isinstance(part, int) or text.isdigit() else (f".{text}" if out else text)
    return out or ("body" if loc and loc[0] == "body" else ".".join(str(p) for p in loc))


def install(app: FastAPI) -> None:
    @app.exception_handler(AllegianceError)
    async def _domain(_request: Request, exc: AllegianceError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.message, field=exc.field, **exc.data)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            if error.get("type") == "json_invalid":  # loc holds the parser's character offset
                offset = error["loc"][-1] if error["loc"] else "?"
                errors.append({"field": "body", "reason": f"is not valid JSON (at character {offset})"})
            else:
                errors.append({"field": location(tuple(error["loc"])), "reason": error["msg"]})
        first = errors[0] if errors else {"field": None, "reason": "invalid request"}
        return problem(422, "validation_failed", f"{first['field']}: {first['reason']}", field=first["field"],
                       errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return problem(exc.status_code, code, str(exc.detail))
