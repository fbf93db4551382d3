"""Shared fixtures. Every database test runs on SQLite, and on PostgreSQL too when
``ALLEGIANCE_TEST_POSTGRES_URL`` points at a server (``make test`` starts one per run).

Each test gets a fresh database cloned from a migrated template: SQLite copies a file,
PostgreSQL uses ``CREATE DATABASE ... TEMPLATE`` — both far faster than migrating per test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance, build
from allegiance.config import Settings
from allegiance.kernel.clock import Clock
from allegiance.storage.migrate import upgrade

PG_ADMIN_URL = os.environ.get("ALLEGIANCE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_ADMIN_URL else [])
TEST_SECRET = "test-secret-key-0123456789"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _pg_admin() -> Engine:
    assert PG_ADMIN_URL
    return create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool,
                         isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    assert PG_ADMIN_URL
    name = f"allegiance_tpl_{_worker()}_{uuid.uuid4().hex[:6]}"
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield name
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "allegiance.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"allegiance_t_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)  # type: ignore[arg-type]
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def make_settings(url: str, **overrides: object) -> Settings:
    return Settings(database_url=url, environment="test", secret_key=TEST_SECRET, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock | None:
    """Override in a test module to drive time by hand (``FixedClock``)."""
    return None


@pytest.fixture
def allegiance(db_url: str, clock: Clock | None) -> Iterator[Allegiance]:
    app = build(make_settings(db_url), clock=clock)
    yield app
    app.close()


@dataclass
class ProgramFixture:
    id: int
    slug: str
    operator_key: str
    operator_key_id: int


@pytest.fixture
def program(allegiance: Allegiance) -> ProgramFixture:
    with allegiance.write() as uow:
        created = uow.programs.create_program(f"p-{uuid.uuid4().hex[:8]}", "Test program")
        key_id, key = uow.access.create_key(created["id"], "operator", KeyRole.OPERATOR)
    return ProgramFixture(created["id"], created["slug"], key, key_id)
