"""Gated routers route every request exactly as ungated ones do, only without walking other prefixes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from allegiance import route_gates
from allegiance.asgi import create_app
from allegiance.route_gates import gate_included_routers, literal_prefixes
from tests.conftest import make_settings

pytestmark = pytest.mark.skipif(route_gates._IncludedRouter is None, reason="FastAPI copies included routes")


@pytest.mark.parametrize(("paths", "expected"), [
    (["/api/v1/events", "/api/v1/event-types/{code}"], ("/api/v1/event-types", "/api/v1/events")),
    (["/api/v1/accounts", "/api/v1/accounts/{id}"], ("/api/v1/accounts",)),
    (["/api/v1/accounts/{id}", "/api/v1/accounts/{id}/lots"], ("/api/v1/accounts",)),
    (["/api/v1/organizations/{id}/tier", "/api/v1/tiers"], ("/api/v1/organizations", "/api/v1/tiers")),
    (["/api/v1/{program}/x", "/api/v1/{program}/y"], ("/api/v1",)),
    (["/login", "/logout"], ("/login", "/logout")),
    (["/", "/program"], ()),  # "/" would admit every path: nothing to gain
    (["/{page}", "/{page}/edit"], ()),
    (["/only"], ("/only",)),
    ([], ()),
])
def test_literal_prefixes(paths: list[str], expected: tuple[str, ...]) -> None:
    assert literal_prefixes(paths) == expected
    for path in paths:  # the property the gate relies on: every route's path passes its gate
        assert not expected or path.startswith(expected)


def _ungate(routes: list[BaseRoute]) -> None:
    included = route_gates._IncludedRouter
    for index, route in enumerate(routes):
        if isinstance(route, route_gates.GatedRouter):
            routes[index] = included(original_router=route.original_router, include_context=route.include_context)


def _toy_app(gated: bool) -> FastAPI:
    """Routers whose prefixes overlap, a parameter that shadows a literal, and an ungated
    router (its first segment is a parameter) last."""
    app = FastAPI()
    items = APIRouter(prefix="/items")
    items.add_api_route("/{item_id}", lambda item_id: {"route": "items.one", "id": item_id}, methods=["GET"])
    items.add_api_route("/special", lambda: {"route": "items.special"}, methods=["GET"])
    items.add_api_route("/", lambda: {"route": "items.create"}, methods=["POST"])
    mixed = APIRouter()
    mixed.add_api_route("/items/special", lambda: {"route": "mixed.special"}, methods=["GET", "DELETE"])
    mixed.add_api_route("/itemsets", lambda: {"route": "mixed.itemsets"}, methods=["GET"])
    mixed.add_api_route("/users/{user_id}", lambda user_id: {"route": "mixed.user", "id": user_id}, methods=["PUT"])
    tail = APIRouter()
    tail.add_api_route("/{page}", lambda page: {"route": "tail", "page": page}, methods=["GET"])
    for router in (items, mixed):
        app.include_router(router, prefix="/v1")
    app.include_router(tail)
    if gated:
        assert gate_included_routers(app.router.routes) == 2  # the last one has no literal prefix
    return app


TOY_REQUESTS = [("GET", "/v1/items/7"), ("GET", "/v1/items/special"), ("DELETE", "/v1/items/special"),
                ("POST", "/v1/items/"), ("POST", "/v1/items"), ("GET", "/v1/itemsets"), ("PUT", "/v1/users/3"),
                ("GET", "/v1/users/3"), ("PATCH", "/v1/items/special"), ("GET", "/v1/other"), ("GET", "/elsewhere"),
                ("GET", "/v1/itemsetsX"), ("GET", "/v1"), ("GET", "/v1/nothing/here")]


@pytest.mark.parametrize("root_path", ["", "/mounted"])
def test_a_gated_app_answers_every_request_as_the_ungated_one(root_path: str) -> None:
    answers = []
    for gated in (False, True):
        with TestClient(_toy_app(gated), root_path=root_path) as client:
            answers.append([(response.status_code, response.headers.get("location"), response.text)
                            for response in (client.request(method, root_path + path, follow_redirects=False)
                                             for method, path in TOY_REQUESTS)])
    assert answers[0] == answers[1]
    statuses = {status for status, _, _ in answers[1]}
    assert {200, 307, 404, 405} <= statuses  # full, slash redirect, none, partial (wrong method): all covered


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else "1", path)


def _leaf_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for context in contexts:
            path = getattr(context, "path_format", None) or getattr(context, "path", None)
            methods = sorted(getattr(context, "methods", None) or {"GET"})
            if isinstance(path, str):
                yield methods[0], _concrete(path)


def _routed(app: FastAPI, method: str, path: str) -> tuple[str | None, int]:
    """The endpoint the application dispatched to (read from the ASGI scope it mutates), by name, since
    some are closures made per application (``/healthz``, ``/docs``), and the status it answered."""
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                             "root_path": "", "query_string": b"", "headers": [(b"host", b"testserver")],
                             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "scheme": "http",
                             "http_version": "1.1", "asgi": {"version": "3.0"}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    endpoint = scope.get("endpoint")
    name = getattr(endpoint, "__qualname__", type(endpoint).__qualname__)  # a mount's app is an object
    return (f"{endpoint.__module__}.{name}" if endpoint else None), sent[0]["status"]


def test_the_served_application_routes_every_route_as_without_gates(db_url: str) -> None:
    apps = [create_app(make_settings(db_url)) for _ in range(2)]
    try:
        gated, plain = apps
        assert sum(isinstance(route, route_gates.GatedRouter) for route in gated.routes) >= 20
        _ungate(plain.router.routes)
        assert not any(isinstance(route, route_gates.GatedRouter) for route in plain.routes)
        requests = sorted(set(_leaf_routes(plain)))
        assert len(requests) > 150
        for method, path in requests:
            expected = _routed(plain, method, path)
            assert expected[0] is not None or expected[1] == 404, (method, path)
            assert _routed(gated, method, path) == expected, (method, path)
    finally:
        for app in apps:
            app.state.allegiance.close()
