from __future__ import annotations

import pytest
from pydantic import ValidationError

from allegiance.config import Settings


def test_a_placeholder_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="ALLEGIANCE_SECRET_KEY"):
        Settings(environment="production", secret_key="change-me")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="ALLEGIANCE_SECRET_KEY"):
        Settings(environment="production", secret_key="short")  # type: ignore[arg-type]
    assert Settings(environment="production", secret_key="x" * 32).secret_key == "x" * 32  # type: ignore[arg-type]
    assert Settings(environment="development").secret_key  # type: ignore[arg-type]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLEGIANCE_DATABASE_URL", "sqlite:////tmp/x.db")
    monkeypatch.setenv("ALLEGIANCE_LOG_LEVEL", "DEBUG")
    settings = Settings()
    assert (settings.database_url, settings.log_level) == ("sqlite:////tmp/x.db", "DEBUG")
    monkeypatch.setenv("ALLEGIANCE_LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()
