"""Every 4xx is an RFC 9457 problem a client can branch on: ``application/problem+json`` with
``type``, ``title``, ``status``, ``code`` and ``detail``, and for bad input the ``field`` that is wrong,
as a path into the request (``events[1].payload.amount_minor``, ``amount``, ``Idempotency-Key``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import EVENT_TYPE, FUNDS, INTEGRATION, NO_KEY, OPERATOR, OWN, QUIET, World

pytestmark = [QUIET]

V1 = "/api/v1"


@dataclass
class Bad:
    status: int
    code: str
    field: str | None
    method: str
    path: Callable[[World], str]
    json: Callable[[World], Any] | None = None
    caller: str = OPERATOR
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    idempotency: bool = True
    content: bytes | None = None


def event(w: World, **changes: Any) -> dict[str, Any]:
    return {"source_id": w.ref("src"), "type": EVENT_TYPE, "occurred_at": datetime.now(UTC).isoformat(),
            "organization_id": w.sides[OWN].organization_id, "payload": {"amount_minor": 1}, **changes}


def own(name: str) -> Callable[[World], Any]:
    return lambda w: getattr(w.sides[OWN], name)


def award(amount: Any) -> Callable[[World], dict[str, Any]]:
    return lambda w: {"organization_id": w.sides[OWN].organization_id, "amount": amount}


CASES: dict[str, Bad] = {
    "no key": Bad(401, "unauthenticated", None, "GET", lambda w: f"{V1}/accounts", caller=NO_KEY),
    "wrong scheme": Bad(401, "unauthenticated", None, "GET", lambda w: f"{V1}/accounts", caller=NO_KEY,
                        headers={"Authorization": "Basic dXNlcjpwYXNz"}),
    "role may not": Bad(403, "forbidden", None, "GET", lambda w: f"{V1}/accounts", caller=INTEGRATION),
    "missing object": Bad(404, "not_found", None, "GET", lambda w: f"{V1}/accounts/987654321"),
    "unknown route": Bad(404, "not_found", None, "GET", lambda w: f"{V1}/nothing-here"),
    "wrong method": Bad(405, "method_not_allowed", None, "DELETE", lambda w: f"{V1}/accounts"),
    "insufficient funds": Bad(409, "insufficient_funds", None, "POST", lambda w: f"{V1}/transactions/spends",
                              lambda w: {"account_id": w.sides[OWN].personal_account_id, "amount": FUNDS + 1}),
    "duplicate external id": Bad(409, "duplicate_external_id", "external_id", "POST",
                                 lambda w: f"{V1}/participants",
                                 lambda w: {"organization_id": w.sides[OWN].organization_id, "name": "Twin",
                                            "external_id": _external_id(w), "role": "engineer"}),
    "too large": Bad(413, "payload_too_large", None, "POST", lambda w: f"{V1}/events",
                     content=b" " * 3_000_000 + b"{}", headers={"content-type": "application/json"}),
    "batch payload field": Bad(422, "invalid_payload", "events[1].payload.amount_minor", "POST",
                               lambda w: f"{V1}/events",
                               lambda w: {"events": [event(w), event(w, payload={"amount_minor": "ten"})]}),
    "batch missing payload field": Bad(422, "invalid_payload", "events[1].payload.amount_minor", "POST",
                                       lambda w: f"{V1}/events",
                                       lambda w: {"events": [event(w), event(w, payload={})]}),
    "batch shape field": Bad(422, "validation_failed", "events[2].occurred_at", "POST", lambda w: f"{V1}/events",
                             lambda w: {"events": [event(w), event(w), event(w, occurred_at="yesterday")]}),
    "batch unknown type": Bad(422, "unknown_event_type", "events[0].type", "POST", lambda w: f"{V1}/events",
                              lambda w: {"events": [event(w, type="never.declared")]}),
    "single payload field": Bad(422, "invalid_payload", "payload.amount_minor", "POST", lambda w: f"{V1}/events",
                                lambda w: event(w, payload={"amount_minor": -1})),
    "naive time": Bad(422, "validation_failed", "occurred_at", "POST", lambda w: f"{V1}/events",
                      lambda w: event(w, occurred_at="2024-05-01T10:00:00")),
    "zero amount": Bad(422, "validation_failed", "amount", "POST", lambda w: f"{V1}/transactions/awards", award(0)),
    "string amount": Bad(422, "validation_failed", "amount", "POST", lambda w: f"{V1}/transactions/awards",
                         award("ten")),
    "huge amount": Bad(422, "validation_failed", "amount", "POST", lambda w: f"{V1}/transactions/awards",
                       award(10**16)),
    "missing idempotency key": Bad(422, "validation_failed", "Idempotency-Key", "POST",
                                   lambda w: f"{V1}/transactions/awards", award(5), idempotency=False),
    "too long idempotency key": Bad(422, "validation_failed", "Idempotency-Key", "POST",
                                    lambda w: f"{V1}/transactions/awards", award(5),
                                    headers={"Idempotency-Key": "k" * 201}),
    "unknown unit": Bad(422, "validation_failed", "unit", "POST", lambda w: f"{V1}/transactions/awards",
                        lambda w: {"organization_id": w.sides[OWN].organization_id, "amount": 5, "unit": "EUR"}),
    "path id not a number": Bad(422, "validation_failed", "account_id", "GET", lambda w: f"{V1}/accounts/abc"),
    "limit zero": Bad(422, "validation_failed", "limit", "GET", lambda w: f"{V1}/accounts?limit=0"),
    "bad cursor": Bad(422, "validation_failed", "cursor", "GET", lambda w: f"{V1}/accounts?cursor=%21%21"),
    "unknown role": Bad(422, "unknown_role", "role", "POST", lambda w: f"{V1}/participants",
                        lambda w: {"organization_id": w.sides[OWN].organization_id, "name": "N",
                                   "external_id": w.ref("p"), "role": "astronaut"}),
    "bad email": Bad(422, "validation_failed", "email", "PATCH",
                     lambda w: f"{V1}/participants/{w.sides[OWN].participant_id}", lambda w: {"email": "not-mail"}),
    "hierarchy cycle": Bad(422, "hierarchy_cycle", "parent_id", "PATCH",
                           lambda w: f"{V1}/organizations/{w.sides[OWN].organization_id}",
                           lambda w: {"parent_id": w.sides[OWN].organization_id}),
    "event type name mismatch": Bad(422, "validation_failed", "name", "PUT", lambda w: f"{V1}/event-types/a.b",
                                    lambda w: {"name": "c.d"}),
    "not an object body": Bad(422, "validation_failed", "body", "POST", lambda w: f"{V1}/transactions/awards",
                              lambda w: [1, 2]),
}


def _external_id(world: World) -> str:
    with world.allegiance.read() as uow:
        return str(uow.programs.participant(world.program_id, world.sides[OWN].participant_id)["external_id"])


def assert_problem(response: Any, status: int, code: str, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "code", "detail"} <= set(body), body
    assert (body["status"], body["code"]) == (status, code), body
    assert body["type"].endswith(f"/{code}") and body["title"] and isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def request(world: World, bad: Bad) -> Any:
    headers = {**world.headers(bad.caller, idempotency=bad.idempotency), **bad.headers}
    return world.client.request(bad.method, bad.path(world), headers=headers, content=bad.content,
                                json=bad.json(world) if bad.json else None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_refusal_is_a_problem_naming_its_field(world: World, case: str) -> None:
    bad = CASES[case]
    before = world.fingerprint()
    assert_problem(request(world, bad), bad.status, bad.code, bad.field)
    assert world.fingerprint() == before


def test_validation_problem_lists_every_error(world: World) -> None:
    """``field`` names the first error; ``errors`` carries all of them, each with field and reason."""
    response = world.client.post(f"{V1}/transactions/awards", json={"amount": -1, "memo": "x" * 501},
                                 headers=world.headers(OPERATOR))
    body = assert_problem(response, 422, "validation_failed", None)
    fields = {e["field"] for e in body["errors"]}
    assert {"organization_id", "amount", "memo"} <= fields
    assert body["field"] in fields and all(e["reason"] for e in body["errors"])


def test_invalid_json_names_the_body(world: World) -> None:
    response = world.client.post(f"{V1}/transactions/awards", content=b'{"amount": ',
                                 headers={**world.headers(OPERATOR), "content-type": "application/json"})
    assert_problem(response, 422, "validation_failed", "body")


@pytest.mark.parametrize("raw", [None, [1, 2], "event"], ids=["null", "list", "string"])
def test_event_body_of_the_wrong_shape_names_the_body(world: World, raw: Any) -> None:
    response = world.client.post(f"{V1}/events", json=raw, headers=world.headers(INTEGRATION))
    assert_problem(response, 422, "validation_failed", "body")


def test_bad_dict_key_is_named_by_its_path(world: World) -> None:
    response = world.client.patch(f"{V1}/participants/{world.sides[OWN].participant_id}",
                                  json={"consents": {"fax": True}}, headers=world.headers(OPERATOR))
    assert_problem(response, 422, "validation_failed", "consents.fax")
