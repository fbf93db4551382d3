"""The baseline server: a minimal FastAPI app with one JSON route, served exactly like
``allegiance serve`` (uvicorn, one worker, no access log).

The route is a synchronous ``def`` that takes the same JSON body as ``POST /api/v1/events`` and
answers 201 with a small JSON object, so it goes through the same threadpool and body parsing: the
gap between the two is what the application itself (validation, authentication, database) costs.

Run: ``python -m bench.hello --port 8123``.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/hello", status_code=201)
    def hello(raw: Annotated[Any, Body()] = None) -> JSONResponse:
        return JSONResponse({"ok": True, "received": isinstance(raw, dict)}, status_code=201)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run("bench.hello:create_app", factory=True, host="127.0.0.1", port=args.port, workers=1,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
