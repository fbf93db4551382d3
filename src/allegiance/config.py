"""One typed settings object, read from the environment (prefix ``ALLEGIANCE_``) and passed into
``bootstrap.build`` — never imported as a global. Fails fast, naming the bad key."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development", "insecure-dev-key"}
DEV_SECRET = "insecure-dev-key"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALLEGIANCE_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = Field(default="sqlite:///./var/allegiance.db",
                              description="Any SQLAlchemy URL: sqlite:///path or postgresql+psycopg://...")
    secret_key: str = Field(default=DEV_SECRET, description="Signs sessions and CSRF tokens")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    sqlite_synchronous: str = Field(default="FULL", pattern=r"^(OFF|NORMAL|FULL|EXTRA)$")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    max_page_size: int = Field(default=200, ge=1, le=10000)
    max_batch_events: int = Field(default=1000, ge=1, le=100000)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    rate_limit_per_second: float = Field(default=50.0, ge=0, description="Sustained requests per API key; 0 = off")
    rate_limit_burst: int = Field(default=100, ge=1, description="Requests a key may send at once")
    cache_seconds: float = Field(default=2.0, ge=0, le=60, description=(
        "How long a process caches API key principals and event type schemas; changes made through "
        "another process are seen at most this late. 0 = no caching"))
    malloc_arenas: int = Field(default=2, ge=0, le=64, description=(
        "glibc malloc arenas for the served process (M_ARENA_MAX). The server's many request threads "
        "would otherwise each grow an arena and hold freed memory; 0 = leave glibc's default (8 × cores)"))

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment is not Environment.DEVELOPMENT and (
            self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 16
        ):
            raise ValueError(
                "ALLEGIANCE_SECRET_KEY is a placeholder or shorter than 16 characters; "
                f"set a real secret outside development (environment={self.environment.value})"
            )
        return self
