"""Fixtures for the operator pages: the served app (API + pages), an operator user, a logged-in client."""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI

from allegiance.api.app import create_api
from allegiance.bootstrap import Allegiance
from allegiance.web.app import mount_web

HTTPX_WARNING = "Using `httpx` with `starlette.testclient` is deprecated"

with warnings.catch_warnings():  # starlette warns once, at import (a UserWarning), about its httpx client
    warnings.filterwarnings("ignore", message=HTTPX_WARNING)
    from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery staple"


@dataclass
class OperatorUser:
    id: int
    email: str
    name: str
    password: str


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client: TestClient, user: OperatorUser, *, next_url: str = "") -> None:
    form = client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": user.password, "next": next_url,
                                           "csrf_token": csrf_of(form.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.fixture
def web_app(allegiance: Allegiance) -> FastAPI:
    app = create_api(allegiance)
    mount_web(app, allegiance)
    return app


@pytest.fixture
def client(web_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(web_app) as test_client:
        yield test_client


@pytest.fixture
def operator_user(allegiance: Allegiance) -> OperatorUser:
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    with allegiance.write() as uow:
        user_id = uow.access.create_user(email, "Olga Operator", PASSWORD)
    return OperatorUser(user_id, email, "Olga Operator", PASSWORD)


@pytest.fixture
def logged_in(client: TestClient, operator_user: OperatorUser) -> TestClient:
    log_in(client, operator_user)
    return client
