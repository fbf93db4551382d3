"""The served application: the API plus the operator pages, built from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from allegiance.api.app import create_api
from allegiance.bootstrap import build
from allegiance.config import Settings
from allegiance.runtime import limit_malloc_arenas
from allegiance.web.app import mount_web


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    limit_malloc_arenas(settings.malloc_arenas)
    allegiance = build(settings)
    app = create_api(allegiance)
    mount_web(app, allegiance)
    return app
