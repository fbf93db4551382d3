"""``mount_web`` through the served entry point (``allegiance.asgi.create_app``)."""

from __future__ import annotations

import pytest

from allegiance.asgi import create_app
from allegiance.config import Settings
from tests.conftest import TEST_SECRET
from tests.web.conftest import HTTPX_WARNING, TestClient, csrf_of

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")


@pytest.mark.parametrize("environment", ["test", "production"])
def test_served_app_has_the_pages_and_a_secure_cookie_in_production(db_url: str, environment: str) -> None:
    app = create_app(Settings(database_url=db_url, environment=environment, secret_key=TEST_SECRET))  # type: ignore[arg-type]
    try:
        with TestClient(app) as client:
            assert client.get("/", follow_redirects=False).headers["location"] == "/login"
            login = client.get("/login")
            assert login.status_code == 200 and csrf_of(login.text)
            cookie = login.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=lax" in cookie
            assert ("secure" in cookie.split("; ")) is (environment == "production")
            assert client.get("/api/v1/programs").status_code == 401  # the API is untouched
    finally:
        app.state.allegiance.close()
