"""Idempotency-Key through the HTTP API: one effect per (API key, Idempotency-Key), whatever the
retries and races; a stored answer is replayed verbatim; a key reused for another request is refused;
a refused write leaves no key behind, so the client can retry it once the cause is fixed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from allegiance.access.model import KeyRole
from allegiance.storage import tables as t
from tests import factories as f
from tests.api.conftest import FUNDS, OPERATOR, ORG_ADMIN, OWN, QUIET, World, new_key

pytestmark = [QUIET]

V1 = "/api/v1"
AWARDS = f"{V1}/transactions/awards"
PARALLEL = 8


def bearer(secret: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {secret}"}
    return {**headers, "Idempotency-Key": key} if key is not None else headers


def award_body(world: World, amount: int = 25) -> dict[str, Any]:
    own = world.sides[OWN]
    return {"organization_id": own.organization_id, "participant_id": own.participant_id, "amount": amount}


def test_parallel_retries_write_one_transaction(world: World) -> None:
    key, body, secret = new_key(), award_body(world), world.keys[OPERATOR]
    before = world.count(t.transactions)
    barrier = threading.Barrier(PARALLEL)

    def attempt(_: int) -> Any:
        barrier.wait()
        return world.client.post(AWARDS, json=body, headers=bearer(secret, key))

    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(pool.map(attempt, range(PARALLEL)))

    assert world.count(t.transactions) == before + 1
    created = [r for r in responses if r.status_code == 201]
    in_flight = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_flight) == PARALLEL, [r.text for r in responses]
    # Equal as JSON, not byte for byte: PostgreSQL's JSONB stores the replayed body with its keys reordered.
    assert created and all(r.json() == created[0].json() for r in created), [r.text for r in created]
    assert [r.headers.get("idempotency-hit") for r in created].count(None) == 1  # exactly one did the work
    assert all(r.json()["code"] == "idempotency_in_flight" and r.json()["field"] == "Idempotency-Key"
               for r in in_flight)

    replay = world.client.post(AWARDS, json=body, headers=bearer(secret, key))
    assert (replay.status_code, replay.json()) == (201, created[0].json())
    assert replay.headers["idempotency-hit"] == "true"
    assert world.count(t.transactions) == before + 1


def test_replay_answers_the_stored_response_without_writing(world: World) -> None:
    key, body, secret = new_key(), award_body(world), world.keys[OPERATOR]
    first = world.client.post(AWARDS, json=body, headers=bearer(secret, key))
    assert first.status_code == 201 and "idempotency-hit" not in first.headers
    balance = world.balance(world.sides[OWN].personal_account_id)
    before = world.fingerprint()
    for _ in range(3):
        again = world.client.post(AWARDS, json=body, headers=bearer(secret, key))
        assert (again.status_code, again.json(), again.headers["idempotency-hit"]) == (201, first.json(), "true")
    assert world.fingerprint() == before
    assert world.balance(world.sides[OWN].personal_account_id) == balance


@pytest.mark.parametrize("change", ["amount", "path"])
def test_same_key_for_another_request_is_refused(world: World, change: str) -> None:
    key, secret = new_key(), world.keys[OPERATOR]
    assert world.client.post(AWARDS, json=award_body(world), headers=bearer(secret, key)).status_code == 201
    before = world.fingerprint()
    if change == "amount":
        response = world.client.post(AWARDS, json=award_body(world, 26), headers=bearer(secret, key))
    else:
        response = world.client.post(f"{V1}/transactions/spends", headers=bearer(secret, key),
                                     json={"account_id": world.sides[OWN].personal_account_id, "amount": 25})
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert world.fingerprint() == before


def test_keys_are_per_api_key(world: World) -> None:
    """Two clients that happen to pick the same Idempotency-Key get two effects, each replayable."""
    with world.allegiance.write() as uow:
        _, second = uow.access.create_key(world.program_id, "second operator", KeyRole.OPERATOR)
    key, body = new_key(), award_body(world)
    before = world.count(t.transactions)
    one = world.client.post(AWARDS, json=body, headers=bearer(world.keys[OPERATOR], key))
    two = world.client.post(AWARDS, json=body, headers=bearer(second, key))
    assert (one.status_code, two.status_code) == (201, 201)
    assert "idempotency-hit" not in two.headers and one.json()["id"] != two.json()["id"]
    assert world.count(t.transactions) == before + 2
    for secret, first in ((world.keys[OPERATOR], one), (second, two)):
        replay = world.client.post(AWARDS, json=body, headers=bearer(secret, key))
        assert replay.json() == first.json() and replay.headers["idempotency-hit"] == "true"
    reused = world.client.post(AWARDS, json=award_body(world, 99), headers=bearer(second, key))
    assert reused.json()["code"] == "idempotency_key_reused"


def test_a_write_refused_for_funds_stores_no_key(world: World) -> None:
    own = world.sides[OWN]
    key, secret = new_key(), world.keys[ORG_ADMIN]
    body = {"account_id": own.personal_account_id, "amount": FUNDS + 500}
    before = world.fingerprint()
    refused = world.client.post(f"{V1}/transactions/spends", json=body, headers=bearer(secret, key))
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_funds"
    assert world.fingerprint() == before  # no key row, no transaction
    f.fund(world.allegiance, world.program_id, own.personal_account_id, 500)
    retried = world.client.post(f"{V1}/transactions/spends", json=body, headers=bearer(secret, key))
    assert retried.status_code == 201, retried.text
    assert "idempotency-hit" not in retried.headers
    assert world.balance(own.personal_account_id) == 0


MONEY_WRITES = {
    "award": lambda w: (AWARDS, award_body(w)),
    "spend": lambda w: (f"{V1}/transactions/spends", {"account_id": w.sides[OWN].personal_account_id, "amount": 1}),
    "adjust": lambda w: (f"{V1}/transactions/adjustments",
                         {"account_id": w.sides[OWN].personal_account_id, "amount": 1, "memo": "fix"}),
    "transfer": lambda w: (f"{V1}/transactions/transfers", {"from_account_id": w.sides[OWN].personal_account_id,
                                                            "to_account_id": w.sides[OWN].pool_account_id,
                                                            "amount": 1}),
    "reverse": lambda w: (f"{V1}/transactions/{w.award(OWN)}/reverse", {"memo": "undo"}),
    "reserve": lambda w: (f"{V1}/holds", {"account_id": w.sides[OWN].personal_account_id, "amount": 1}),
    "post hold": lambda w: (f"{V1}/holds/{w.hold(OWN)}/post", {}),
    "void hold": lambda w: (f"{V1}/holds/{w.hold(OWN)}/void", None),
}


@pytest.mark.parametrize("write", sorted(MONEY_WRITES))
def test_a_money_write_without_a_key_is_refused_naming_the_header(world: World, write: str) -> None:
    path, body = MONEY_WRITES[write](world)
    before = world.fingerprint()
    response = world.client.post(path, json=body, headers=bearer(world.keys[OPERATOR]))
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("validation_failed", "Idempotency-Key")
    assert world.fingerprint() == before
    done = world.client.post(path, json=body, headers=bearer(world.keys[OPERATOR], new_key()))
    assert done.status_code in (200, 201), done.text  # the control: the same request with a key goes through
