"""Fresh databases for benchmarks, prepared the way an operator would: ``allegiance db upgrade``,
then a program, an API key, event types and organizations through the services.

Templates keep repeated measurements fair and cheap: a prepared database is cloned (a file copy on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL) so each measurement starts from the same
state without paying for the setup again.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance, build
from allegiance.config import Settings
from bench.common import REPO, Context

SECRET = "bench-" + secrets.token_hex(16)
EVENT_TYPE = "bench.order"
EVENT_SCHEMA: dict[str, Any] = {"type": "object", "required": ["amount_minor"],
                                "properties": {"amount_minor": {"type": "integer", "minimum": 0}}}


def cli() -> str:
    """The ``allegiance`` console script of the interpreter running the benchmarks."""
    here = Path(sys.executable).parent / "allegiance"
    return str(here) if here.exists() else "allegiance"


def server_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of an ``allegiance`` subprocess: a production-like configuration, except that
    the per-key rate limit is off — the benchmarks send all their load with one key, and measure what
    the server can do, not the limit (with it on, most answers would be quick 429s)."""
    env = {**os.environ, "ALLEGIANCE_DATABASE_URL": url, "ALLEGIANCE_ENVIRONMENT": "production",
           "ALLEGIANCE_SECRET_KEY": SECRET, "ALLEGIANCE_LOG_LEVEL": "WARNING", "ALLEGIANCE_RATE_LIMIT_PER_SECOND": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.update(extra)
    return env


def _admin(ctx: Context) -> Any:
    assert ctx.postgres_url, "no PostgreSQL server configured"
    url = ctx.postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def new_database(ctx: Context, backend: str, label: str, *, template: str | None = None) -> str:
    """An empty database (or a copy of ``template``), its URL returned."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        path = ctx.workdir / f"{name}.db"
        if template is not None:
            source = make_url(template).database
            assert source
            with sqlite3.connect(source) as conn:  # fold the WAL into the file before copying it
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copy(source, path)
        return f"sqlite:///{path}"
    assert ctx.postgres_url
    engine = _admin(ctx)
    try:
        with engine.connect() as conn:
            suffix = f' TEMPLATE "{make_url(template).database}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    finally:
        engine.dispose()
    return make_url(ctx.postgres_url).set(database=name).render_as_string(hide_password=False)


def drop_database(ctx: Context, url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    engine = _admin(ctx)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """``allegiance db upgrade``, exactly as an operator runs it."""
    done = subprocess.run([cli(), "db", "upgrade"], env=server_env(url), capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"allegiance db upgrade failed: {done.stderr or done.stdout}")


def app_for(url: str) -> Allegiance:
    return build(Settings(database_url=url, environment="production", secret_key=SECRET))  # type: ignore[arg-type]


@contextmanager
def application(url: str) -> Iterator[Allegiance]:
    app = app_for(url)
    try:
        yield app
    finally:
        app.close()


@dataclass
class Prepared:
    """A migrated database with one program, an operator key and some organizations."""

    url: str
    program_id: int
    slug: str
    key: str  # operator: reads and writes everything in the program
    integration_key: str  # what a source system sends events with
    organizations: list[int] = field(default_factory=list)


def prepare(ctx: Context, backend: str, label: str, *, organizations: int = 1,
            event_types: dict[str, dict[str, Any]] | None = None) -> Prepared:
    """Migrate a fresh database, create a program, an operator key, event types and organizations."""
    url = new_database(ctx, backend, label)
    migrate(url)
    slug = f"bench-{uuid.uuid4().hex[:6]}"
    with application(url) as app:
        with app.write() as uow:
            program_id = int(uow.programs.create_program(slug, "Benchmark program")["id"])
            _, key = uow.access.create_key(program_id, "bench", KeyRole.OPERATOR)
            _, integration = uow.access.create_key(program_id, "bench events", KeyRole.INTEGRATION)
            for name, schema in (event_types or {EVENT_TYPE: EVENT_SCHEMA}).items():
                uow.events.declare_type(program_id, name, schema, "benchmark")
        org_ids = create_organizations(app, program_id, organizations)
    return Prepared(url, program_id, slug, key, integration, org_ids)


def create_organizations(app: Allegiance, program_id: int, count: int, *, prefix: str = "org") -> list[int]:
    ids: list[int] = []
    for start in range(0, count, 500):
        with app.write() as uow:
            for index in range(start, min(count, start + 500)):
                created = uow.programs.create_organization(program_id, {
                    "external_id": f"{prefix}-{index:07d}", "name": f"Company {index}", "kind": "customer"})
                ids.append(int(created["id"]))
    return ids


def create_participants(app: Allegiance, program_id: int, organization_ids: list[int]) -> list[int]:
    """One person in each of the given organizations."""
    ids: list[int] = []
    for start in range(0, len(organization_ids), 500):
        with app.write() as uow:
            for index, org in enumerate(organization_ids[start:start + 500], start):
                created = uow.programs.create_participant(program_id, {
                    "organization_id": org, "external_id": f"person-{index:07d}", "name": f"Person {index}",
                    "role": "purchasing_manager"})
                ids.append(int(created["id"]))
    return ids
