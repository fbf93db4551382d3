"""Cached principals and event type schemas over HTTP: a change made through this process applies
at once; a change made behind its back (another worker, the CLI) applies within
``cache_seconds`` — the bound docs/api.md promises."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from allegiance.access.model import KeyRole
from allegiance.api.app import create_api
from allegiance.bootstrap import Allegiance, build
from allegiance.storage import tables as t
from tests.api.conftest import EVENT_TYPE, INTEGRATION, OPERATOR, OWN, PARTICIPANT, QUIET, TestClient, World
from tests.conftest import ProgramFixture, make_settings

pytestmark = [QUIET]
V1 = "/api/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def event_body(world: World, source_id: str, amount: int = 5) -> dict[str, object]:
    return {"source_id": source_id, "type": EVENT_TYPE, "occurred_at": "2026-05-01T09:00:00+00:00",
            "organization_id": world.sides[OWN].organization_id, "payload": {"amount_minor": amount}}


def revoke_behind_the_back(app: Allegiance, key_id: int) -> None:
    """What another process does: the row changes, this process's cache is not told."""
    with app.db.write() as conn:
        conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=datetime.now(UTC)))


def test_a_key_revoked_through_the_api_is_refused_at_once(world: World) -> None:
    created = world.client.post(f"{V1}/api-keys", headers=bearer(world.keys[OPERATOR]),
                                json={"name": "short-lived", "role": "integration"}).json()
    key = created["key"]
    assert world.client.post(f"{V1}/events", json=event_body(world, "c-1"), headers=bearer(key)).status_code == 201
    revoked = world.client.delete(f"{V1}/api-keys/{created['id']}", headers=bearer(world.keys[OPERATOR]))
    assert revoked.status_code == 204
    refused = world.client.post(f"{V1}/events", json=event_body(world, "c-2"), headers=bearer(key))
    assert refused.status_code == 401
    assert world.count(t.events) == 1  # the refused write stored nothing


def test_a_leavers_cached_key_is_refused_at_once(world: World) -> None:
    own = world.sides[OWN]
    path = f"{V1}/organizations/{own.organization_id}"
    assert world.client.get(path, headers=bearer(world.keys[PARTICIPANT])).status_code == 200  # now cached
    left = world.client.post(f"{V1}/participants/{own.participant_id}/leave", json={"reason": "moved on"},
                             headers=world.headers(OPERATOR))
    assert left.status_code == 200, left.text
    assert world.client.get(path, headers=bearer(world.keys[PARTICIPANT])).status_code == 401


def test_a_failed_leave_keeps_the_key_working(world: World) -> None:
    own = world.sides[OWN]
    path = f"{V1}/organizations/{own.organization_id}"
    missing = world.client.post(f"{V1}/participants/999999/leave", json={"reason": "?"},
                                headers=world.headers(OPERATOR))
    assert missing.status_code == 404
    assert world.client.get(path, headers=bearer(world.keys[PARTICIPANT])).status_code == 200


def test_a_change_behind_the_processs_back_applies_within_cache_seconds(world: World) -> None:
    clock = Clock()
    world.allegiance.db.caches.configure(2.0, clock=clock)
    key = world.keys[INTEGRATION]
    assert world.client.post(f"{V1}/events", json=event_body(world, "b-1"), headers=bearer(key)).status_code == 201
    revoke_behind_the_back(world.allegiance, world.key_ids[INTEGRATION])
    clock.now += 1.9  # within the bound: this process may still accept the key ...
    assert world.client.post(f"{V1}/events", json=event_body(world, "b-2"), headers=bearer(key)).status_code == 201
    clock.now += 0.1  # ... and from cache_seconds after it was cached, it does not
    assert world.client.post(f"{V1}/events", json=event_body(world, "b-3"), headers=bearer(key)).status_code == 401


@pytest.fixture
def uncached(db_url: str, program: ProgramFixture) -> Iterator[tuple[Allegiance, TestClient]]:
    app = build(make_settings(db_url, cache_seconds=0))
    with TestClient(create_api(app)) as client:
        yield app, client
    app.close()


def test_cache_seconds_zero_reads_the_key_every_time(uncached: tuple[Allegiance, TestClient],
                                                     program: ProgramFixture) -> None:
    app, client = uncached
    with app.write() as uow:
        key_id, key = uow.access.create_key(program.id, "reader", KeyRole.OPERATOR)
    assert client.get(f"{V1}/api-keys", headers=bearer(key)).status_code == 200
    revoke_behind_the_back(app, key_id)
    assert client.get(f"{V1}/api-keys", headers=bearer(key)).status_code == 401


def test_a_redeclared_event_type_applies_to_the_next_event(world: World) -> None:
    key = world.keys[INTEGRATION]
    first = world.client.post(f"{V1}/events", json=event_body(world, "t-1", amount=-1), headers=bearer(key))
    assert (first.status_code, first.json()["field"]) == (422, "payload.amount_minor")
    declared = world.client.put(f"{V1}/event-types/{EVENT_TYPE}", headers=world.headers(OPERATOR),
                                json={"name": EVENT_TYPE, "payload_schema": {"type": "object"}})
    assert declared.status_code == 200, declared.text
    assert world.client.post(f"{V1}/events", json=event_body(world, "t-1", amount=-1),
                             headers=bearer(key)).status_code == 201


def test_duplicate_and_conflict_answers_are_unchanged(world: World) -> None:
    key = world.keys[INTEGRATION]
    first = world.client.post(f"{V1}/events", json=event_body(world, "d-1"), headers=bearer(key))
    again = world.client.post(f"{V1}/events", json=event_body(world, "d-1"), headers=bearer(key))
    other = world.client.post(f"{V1}/events", json=event_body(world, "d-1", amount=6), headers=bearer(key))
    assert (first.status_code, first.json()["outcome"]) == (201, "accepted")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert again.json()["event_id"] == first.json()["event_id"]
    assert (other.status_code, other.json()["code"], other.json()["field"]) == (
        409, "event_source_id_conflict", "source_id")
    assert world.count(t.events) == 1
