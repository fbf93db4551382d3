"""Skip whole included routers whose paths cannot match a request, by their literal path prefix.

FastAPI 0.165 keeps an included router as one entry of its parent's route list and matches a request
by walking, in order, every route of every included router before it — two to three times per
request (once to find the match, again to handle it). With the API's ~140 routes and the operator
pages declared after them, routing cost ~0.1 ms for ``GET /api/v1/accounts/{id}`` and ~0.5 ms for
an operator page before any of our code ran (docs/architecture.md "Routing"). A gated router answers
"no match" at once when the request's path does not start with the literal prefix every one of its
routes shares, so a request walks only the routes that could match it. Order and results are
unchanged: a route's pattern is anchored and begins with that prefix, so a path without it could
match neither fully nor partially.

On a FastAPI that copies included routes into the parent (before ``_IncludedRouter`` existed) there
is nothing to gate and the routes are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette._utils import get_route_path  # what FastAPI's own matching strips root_path with
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

try:  # private to FastAPI: present from the release that stopped copying included routes
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - older FastAPI, routes are flat already
    _IncludedRouter = None  # type: ignore[assignment,misc]


def _shared_segments(split: list[list[str]]) -> list[str]:
    shared: list[str] = []
    for segments in zip(*split, strict=False):
        first = segments[0]
        if "{" in first or any(segment != first for segment in segments):
            break
        shared.append(first)
    return shared


def literal_prefixes(paths: list[str]) -> tuple[str, ...]:
    """Path prefixes, one segment past what all ``paths`` share, that every path starts with.

    ``["/api/v1/events", "/api/v1/event-types/{code}"]`` → ``("/api/v1/event-types",
    "/api/v1/events")``. When a path ends where the shared part ends, or goes on with a parameter,
    the shared part alone is the gate (``"/api/v1/accounts"`` for ``/api/v1/accounts`` and
    ``/api/v1/accounts/{id}``). Nothing to gate on — ``()`` — when the paths share no literal
    segment, or only ``"/"``. A path such as ``/api/v1/eventsX`` passes the gate and fails inside it,
    which is correct, merely not skipped.
    """
    if not paths:
        return ()
    split = [path.split("/") for path in paths]
    shared = _shared_segments(split)
    common = "/".join(shared)
    fallback = (common,) if common.startswith("/") and common != "/" else ()
    depth = len(shared)
    prefixes = set()
    for segments in split:
        if len(segments) <= depth or not segments[depth] or "{" in segments[depth]:
            return fallback
        prefixes.add("/".join(segments[: depth + 1]))
    if not all(prefix.startswith("/") and prefix != "/" for prefix in prefixes):
        return fallback
    return tuple(sorted(prefixes))


def _route_paths(included: Any) -> list[str] | None:
    paths = []
    for context in included.effective_route_contexts():
        path = getattr(context.starlette_route, "path", None) if context.starlette_route else None
        path = path or getattr(context, "path_format", None) or getattr(context.original_route, "path", None)
        if not isinstance(path, str):
            return None  # a route we cannot read: leave this router ungated
        paths.append(path)
    return paths


if _IncludedRouter is not None:

    @dataclass
    class GatedRouter(_IncludedRouter):
        """An included router that refuses, without walking its routes, paths outside its prefix."""

        gate: tuple[str, ...] = ()

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            if not get_route_path(scope).startswith(self.gate):
                return Match.NONE, {}
            return super().matches(scope)


def gate_included_routers(routes: list[BaseRoute]) -> int:
    """Replace, in place, each included router of ``routes`` by a gated one; returns how many.

    Call it on the application's top-level route list once every router is included: a router
    included later is simply not gated.
    """
    if _IncludedRouter is None:  # pragma: no cover - older FastAPI
        return 0
    gated = 0
    for index, route in enumerate(routes):
        if type(route) is not _IncludedRouter:
            continue
        paths = _route_paths(route)
        prefixes = literal_prefixes(paths) if paths else ()
        if not prefixes:
            continue
        routes[index] = GatedRouter(original_router=route.original_router,
                                    include_context=route.include_context, gate=prefixes)
        gated += 1
    return gated
