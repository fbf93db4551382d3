"""Migrations: upgrade from nothing, match the models exactly, downgrade cleanly — on both databases."""

from __future__ import annotations

from pathlib import Path

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


def test_keyset_pages_of_one_program_need_no_sort(tmp_path: Path) -> None:
    """``WHERE program_id = ? AND id > ? ORDER BY id LIMIT n`` — every cursor-paginated list of a
    program — must walk an index in order, not sort all of the program's rows for each page (SQLite's
    planner took another ``program_id…`` index and a temporary B-tree until migration 0011)."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    sorted_per_page = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "program_id" not in table.c or "id" not in table.c:
                continue
            plan = " | ".join(row[3] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT * FROM {table.name} WHERE program_id = 1 AND id > 5 ORDER BY id LIMIT 50"))
            if "TEMP B-TREE" in plan:
                sorted_per_page.append(table.name)
    engine.dispose()
    assert not {"events", "organizations", "participants", "accounts", "redemptions"} & set(sorted_per_page), \
        sorted_per_page
