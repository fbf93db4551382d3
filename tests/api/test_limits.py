"""Limits that keep one client from making the server do unbounded work: page size, body size, batch
size, cursors that the server did not issue — each refused up front with a problem naming the cause,
and nothing written."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from allegiance.bootstrap import build
from allegiance.storage import tables as t
from tests.api.conftest import EVENT_TYPE, INTEGRATION, OPERATOR, OWN, QUIET, TestClient, World
from tests.conftest import make_settings

pytestmark = [QUIET]

V1 = "/api/v1"
LISTS = ["/organizations", "/participants", "/accounts", "/transactions", "/holds", "/events"]


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if field is not None:
        assert body["field"] == field, body
    return body


def events(world: World, count: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"events": [{"source_id": world.ref("src"), "type": EVENT_TYPE, "occurred_at": now,
                        "organization_id": world.sides[OWN].organization_id, "payload": {"amount_minor": 1}}
                       for _ in range(count)]}


@pytest.mark.parametrize("limit", [10**6, 0, -1, "many"])
def test_page_size_out_of_range_is_refused_naming_limit(world: World, limit: Any) -> None:
    for path in LISTS:
        problem(world.client.get(V1 + path, params={"limit": limit}, headers=world.headers(OPERATOR)), 422, "limit")


def test_page_size_is_capped_by_the_setting(world: World) -> None:
    maximum = world.allegiance.settings.max_page_size
    ok = world.client.get(f"{V1}/accounts", params={"limit": maximum}, headers=world.headers(OPERATOR))
    assert ok.status_code == 200
    body = problem(world.client.get(f"{V1}/accounts", params={"limit": maximum + 1},
                                    headers=world.headers(OPERATOR)), 422, "limit")
    assert str(maximum) in body["detail"]


def encoded(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


FOREIGN_CURSORS = {"punctuation": "!!!", "junk": "not-base64?", "id-not-int": encoded("id:abc"),
                   "other-kind": encoded("offset:5"), "bare-number": encoded("5"),
                   "not-utf8": base64.urlsafe_b64encode(b"\xff\xfe").decode(), "too-long": "x" * 201}


def test_a_cursor_the_server_did_not_issue_is_refused_naming_cursor(world: World) -> None:
    for name, cursor in FOREIGN_CURSORS.items():
        response = world.client.get(f"{V1}/accounts", params={"cursor": cursor}, headers=world.headers(OPERATOR))
        assert (response.status_code, response.json().get("field")) == (422, "cursor"), (name, response.text)


def test_cursors_walk_a_list_once(world: World) -> None:
    """The control for the refusals above: the server's own cursors page through without overlap."""
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(50):
        page = world.client.get(f"{V1}/accounts", params=params, headers=world.headers(OPERATOR)).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    everything = world.client.get(f"{V1}/accounts", params={"limit": 200}, headers=world.headers(OPERATOR)).json()
    assert seen == [item["id"] for item in everything["items"]] and len(seen) == len(set(seen)) > 3


def test_a_3mb_body_is_refused_with_413(world: World) -> None:
    before = world.fingerprint()
    body = b'{"padding": "' + b"x" * 3_000_000 + b'"}'
    for path in ("/events", "/transactions/awards", "/organizations", "/participants"):
        response = world.client.post(V1 + path, content=body,
                                     headers={**world.headers(OPERATOR), "content-type": "application/json"})
        assert problem(response, 413)["code"] == "payload_too_large", path
    assert world.fingerprint() == before


def test_a_3mb_chunked_body_is_refused_with_413(world: World) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b" " * 100_000
        yield b'{"events": []}'

    response = world.client.post(f"{V1}/events", content=chunks(),
                                 headers={**world.headers(INTEGRATION), "content-type": "application/json"})
    assert response.status_code == 413, response.text


def test_a_batch_over_the_configured_maximum_is_refused_whole(world: World) -> None:
    maximum = world.allegiance.settings.max_batch_events
    before = world.fingerprint()
    response = world.client.post(f"{V1}/events", json=events(world, maximum + 1), headers=world.headers(INTEGRATION))
    assert "events" in problem(response, 422, "events")["detail"]
    assert world.fingerprint() == before


def test_the_batch_limit_follows_the_setting(world: World) -> None:
    """With ``max_batch_events=3``: three events are written, four are refused and none written."""
    small = build(make_settings(world.allegiance.settings.database_url, max_batch_events=3))
    try:
        from allegiance.api.app import create_api

        with TestClient(create_api(small)) as client:
            headers = world.headers(INTEGRATION)
            refused = client.post(f"{V1}/events", json=events(world, 4), headers=headers)
            problem(refused, 422, "events")
            assert world.count(t.events) == 0
            accepted = client.post(f"{V1}/events", json=events(world, 3), headers=headers)
            assert accepted.status_code == 201, accepted.text
            assert world.count(t.events) == 3
    finally:
        small.close()


def test_a_burst_from_one_key_is_rate_limited(world: World) -> None:
    headers = world.headers(OPERATOR, idempotency=False)
    statuses = []
    for _ in range(300):
        response = world.client.get(f"{V1}/programs/current", headers=headers)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert problem(response, 429)["code"] == "too_many_requests"
            assert int(response.headers["retry-after"]) > 0
            break
    assert 429 in statuses


BEYOND = 2**63  # one past the largest id a BIGINT column can hold
HUGE_IDS = {
    "path": ("GET", "/accounts/{}", None),
    "path, write": ("POST", "/holds/{}/void", None),
    "query filter": ("GET", "/transactions?organization_id={}", None),
    "body": ("POST", "/transactions/spends", lambda n: {"account_id": n, "amount": 1}),
    "body reference": ("POST", "/organizations", lambda n: {"external_id": "huge", "name": "Huge", "parent_id": n}),
    "event subject": ("POST", "/events", lambda n: {"source_id": "huge", "type": EVENT_TYPE, "organization_id": n,
                                                    "occurred_at": "2024-05-01T10:00:00Z",
                                                    "payload": {"amount_minor": 1}}),
}


@pytest.mark.parametrize("where", sorted(HUGE_IDS))
def test_an_id_beyond_64_bits_is_refused_not_a_crash(world: World, where: str) -> None:
    method, path, body = HUGE_IDS[where]
    before = world.fingerprint()
    response = world.lenient().request(method, V1 + path.format(BEYOND), json=body(BEYOND) if body else None,
                                       headers=world.headers(OPERATOR))
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert world.fingerprint() == before
