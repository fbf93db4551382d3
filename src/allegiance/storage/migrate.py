"""Schema migrations (Alembic), driven from code so ``allegiance db upgrade`` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _url(url: str) -> str:
    if url.startswith("postgresql://"):
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return url


def upgrade(url: str, revision: str = "head") -> None:
    from allegiance.storage.database import Database

    Database(url).dispose()  # creates the SQLite parent folder if needed
    command.upgrade(alembic_config(_url(url)), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(_url(url)), revision)


def current_tables(url: str) -> set[str]:
    engine = create_engine(_url(url), poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
