"""The served application: the API plus the operator pages, built from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from allegiance.api.app import create_api
from allegiance.bootstrap import build
from allegiance.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    allegiance = build(settings or Settings())
    app = create_api(allegiance)
    try:
        from allegiance.web.app import mount_web
    except ImportError:  # pragma: no cover - the web package is optional during development
        return app
    mount_web(app, allegiance)
    return app
