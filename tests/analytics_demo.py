"""One demo program per test module, for the analytics adapters (API and pages).

Loading the synthetic demo and running the analytics job takes seconds, so the modules that only
read its results share one database per backend (module scope) instead of one per test. The
database is cloned from the session's migrated template, like ``tests.conftest.db_url`` does.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from allegiance.bootstrap import Allegiance, build
from allegiance.demo.loader import load_demo
from tests.conftest import PG_ADMIN_URL, _pg_admin, make_settings

SEED, ORGANIZATIONS, MONTHS = 3, 60, 24


@contextmanager
def demo_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  backend: str) -> Iterator[str]:
    """A fresh migrated database on ``backend`` ("sqlite" or "postgres"), dropped afterwards."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("analytics") / "allegiance.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    assert PG_ADMIN_URL
    template = request.getfixturevalue("pg_template")
    name = f"allegiance_a_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def demo_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             backend: str) -> Iterator[tuple[Allegiance, int]]:
    """The app over a database holding the demo program (60 organizations, 24 months) and its id."""
    with demo_database(request, tmp_path_factory, backend) as url:
        app = build(make_settings(url))
        try:
            summary = load_demo(app, seed=SEED, organizations=ORGANIZATIONS, months=MONTHS)
            yield app, summary.program_id
        finally:
            app.close()
