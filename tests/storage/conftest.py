"""Fixtures of the storage tests."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import _pg_admin


@pytest.fixture
def second_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another fresh database of the same backend as ``db_url``."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        path = tmp_path / "second.db"
        shutil.copy(url.database, path)  # still empty: copied before anything is written to it
        yield f"sqlite:///{path}"
        return
    name = f"allegiance_t2_{uuid.uuid4().hex[:12]}"
    engine = _pg_admin()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
