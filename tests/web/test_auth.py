"""Login, logout, sessions and CSRF on the operator pages."""

from __future__ import annotations

from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, OperatorUser, csrf_of, log_in

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")


def test_pages_redirect_to_login_with_the_way_back(client: Any, program: ProgramFixture) -> None:
    response = client.get("/organizations?q=acme", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Forganizations%3Fq%3Dacme"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/accounts/1", follow_redirects=False).headers["location"].startswith("/login?next=")


def test_login_sends_the_operator_to_the_page_they_asked_for(client: Any, operator_user: OperatorUser,
                                                            program: ProgramFixture) -> None:
    form = client.get("/login?next=/organizations%3Fq%3Dzzz")
    assert 'name="next" value="/organizations?q=zzz"' in form.text
    response = client.post("/login", data={"email": operator_user.email.upper(), "password": operator_user.password,
                                           "next": "/organizations?q=zzz", "csrf_token": csrf_of(form.text)},
                           follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/organizations?q=zzz"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "allegiance_session=" in cookie
    page = client.get("/organizations")
    assert page.status_code == 200
    assert "Olga Operator" in page.text and "Test program" in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/organizations"


def test_wrong_password_and_unknown_email_get_the_same_answer(client: Any, operator_user: OperatorUser) -> None:
    answers = []
    for email, password in ((operator_user.email, "wrong password"), ("nobody@example.com", operator_user.password)):
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                               follow_redirects=False)
        assert response.status_code == 422
        assert "Wrong email or password." in response.text
        assert f'value="{email}"' in response.text  # the form comes back filled in
        answers.append(response.text.replace(email, "EMAIL"))
    assert answers[0] == answers[1]
    assert client.get("/organizations", follow_redirects=False).status_code == 303  # still not logged in


def test_empty_login_form_says_what_is_missing(client: Any) -> None:
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 422
    assert "Enter your email and password." in response.text


def test_posts_without_the_csrf_token_are_refused(client: Any, operator_user: OperatorUser,
                                                  program: ProgramFixture) -> None:
    client.get("/login")  # the session now holds a token; the POSTs below do not send it
    data = {"email": operator_user.email, "password": operator_user.password}
    missing = client.post("/login", data=data, follow_redirects=False)
    assert missing.status_code == 403
    assert "Form expired" in missing.text
    forged = client.post("/login", data={**data, "csrf_token": "guess"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/organizations", follow_redirects=False).status_code == 303
    log_in(client, operator_user)
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/organizations", follow_redirects=False).status_code == 200  # still logged in


def test_a_token_from_before_login_is_replaced(client: Any, operator_user: OperatorUser,
                                               program: ProgramFixture) -> None:
    before = csrf_of(client.get("/login").text)
    log_in(client, operator_user)
    after = csrf_of(client.get("/organizations").text)
    assert after != before
    assert client.post("/logout", data={"csrf_token": before}, follow_redirects=False).status_code == 403


def test_logout_ends_the_session(logged_in: Any, program: ProgramFixture) -> None:
    token = csrf_of(logged_in.get("/organizations").text)
    response = logged_in.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert logged_in.get("/organizations", follow_redirects=False).status_code == 303


def test_login_never_redirects_off_site(client: Any, operator_user: OperatorUser, program: ProgramFixture) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"email": operator_user.email, "password": operator_user.password,
                                               "next": target, "csrf_token": token}, follow_redirects=False)
        assert response.headers["location"] == "/organizations", target


def test_deactivated_user_is_logged_out_at_the_next_page(logged_in: Any, operator_user: OperatorUser,
                                                         allegiance: Allegiance, program: ProgramFixture) -> None:
    from sqlalchemy import update

    from allegiance.storage import tables as t

    assert logged_in.get("/organizations", follow_redirects=False).status_code == 200
    with allegiance.write() as uow:
        uow.conn.execute(update(t.users).where(t.users.c.id == operator_user.id).values(is_active=False))
    assert logged_in.get("/organizations", follow_redirects=False).status_code == 303


def test_pages_are_not_in_the_openapi_schema_and_send_security_headers(logged_in: Any,
                                                                       program: ProgramFixture) -> None:
    paths = logged_in.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith(("/api/", "/healthz"))]
    page = logged_in.get("/organizations")
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert logged_in.get("/static/app.css").status_code == 200
    assert "form[data-live]" in logged_in.get("/static/app.js").text
