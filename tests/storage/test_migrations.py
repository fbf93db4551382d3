"""Migrations: upgrade from nothing, match the models exactly, downgrade cleanly — on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from allegiance.storage.migrate import _url, current_tables, downgrade, upgrade
from allegiance.storage.tables import metadata


def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = create_engine(_url(db_url), poolclass=NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_then_upgrade_round_trips(db_url: str) -> None:
    downgrade(db_url, "base")
    assert current_tables(db_url) <= {"alembic_version"}
    upgrade(db_url)
    assert set(metadata.tables) <= current_tables(db_url)
