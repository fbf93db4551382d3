"""A client can't set what only the system sets by adding a field to an otherwise valid body.

Each case sends a body that would succeed, plus one privileged field, with the operator's key (the
strongest caller, so the refusal can only come from the field). The answer must be 422 naming that
field, and no row of any table may change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import EVENT_TYPE, OPERATOR, ORG_ADMIN, OWN, QUIET, World

pytestmark = [QUIET]

V1 = "/api/v1"
Case = tuple[str, Callable[[World], str], Callable[[World], dict[str, Any]]]


def _org(w: World) -> dict[str, Any]:
    return {"external_id": w.ref("org"), "name": "Mass Co"}


def _person(w: World) -> dict[str, Any]:
    return {"organization_id": w.sides[OWN].organization_id, "external_id": w.ref("p"), "name": "Mass Person",
            "role": "engineer"}


def _event(w: World) -> dict[str, Any]:
    return {"source_id": w.ref("src"), "type": EVENT_TYPE, "occurred_at": datetime.now(UTC).isoformat(),
            "organization_id": w.sides[OWN].organization_id, "payload": {"amount_minor": 1}}


ROUTES: dict[str, Case] = {
    "create organization": ("POST", lambda w: f"{V1}/organizations", _org),
    "update organization": ("PATCH", lambda w: f"{V1}/organizations/{w.sides[OWN].organization_id}",
                            lambda w: {"name": "Renamed"}),
    "create participant": ("POST", lambda w: f"{V1}/participants", _person),
    "update participant": ("PATCH", lambda w: f"{V1}/participants/{w.sides[OWN].participant_id}",
                           lambda w: {"name": "Renamed"}),
    "award": ("POST", lambda w: f"{V1}/transactions/awards",
              lambda w: {"organization_id": w.sides[OWN].organization_id, "amount": 10}),
    "spend": ("POST", lambda w: f"{V1}/transactions/spends",
              lambda w: {"account_id": w.sides[OWN].personal_account_id, "amount": 10}),
    "adjust": ("POST", lambda w: f"{V1}/transactions/adjustments",
               lambda w: {"account_id": w.sides[OWN].personal_account_id, "amount": 10, "memo": "fix"}),
    "transfer": ("POST", lambda w: f"{V1}/transactions/transfers",
                 lambda w: {"from_account_id": w.sides[OWN].personal_account_id,
                            "to_account_id": w.sides[OWN].pool_account_id, "amount": 10}),
    "reserve": ("POST", lambda w: f"{V1}/holds", lambda w: {"account_id": w.sides[OWN].personal_account_id,
                                                            "amount": 10}),
    "event": ("POST", lambda w: f"{V1}/events", _event),
    "event type": ("PUT", lambda w: f"{V1}/event-types/mass.test", lambda w: {"name": "mass.test"}),
    "api key": ("POST", lambda w: f"{V1}/api-keys", lambda w: {"name": "k", "role": "integration"}),
}

# (route, privileged field, value an attacker would like): every one must be refused.
ATTACKS = [
    ("create organization", "status", "suspended"),
    ("create organization", "program_id", 2),
    ("create organization", "id", 1),
    ("create organization", "tier", "platinum"),
    ("create organization", "balance", 10**9),
    ("create organization", "created_at", "2000-01-01T00:00:00Z"),
    ("update organization", "organization_id", 2),
    ("update organization", "program_id", 2),
    ("update organization", "id", 99),
    ("update organization", "external_id", "stolen"),
    ("update organization", "tier", "platinum"),
    ("create participant", "status", "active"),
    ("create participant", "program_id", 2),
    ("create participant", "id", 1),
    ("create participant", "balance", 10**9),
    ("create participant", "tier", "gold"),
    ("update participant", "organization_id", 2),
    ("update participant", "status", "active"),
    ("update participant", "program_id", 2),
    ("update participant", "balance", 10**9),
    ("award", "program_id", 2),
    ("award", "id", 1),
    ("award", "hash", "0" * 64),
    ("award", "kind", "adjust"),
    ("spend", "balance", 10**9),
    ("spend", "version", 0),
    ("spend", "program_id", 2),
    ("adjust", "hash", "0" * 64),
    ("transfer", "organization_id", 2),
    ("reserve", "status", "posted"),
    ("reserve", "expires_at", "2999-01-01T00:00:00Z"),
    ("reserve", "escrow_account_id", 1),
    ("event", "id", 1),
    ("event", "program_id", 2),
    ("event", "received_at", "2000-01-01T00:00:00Z"),
    ("event type", "program_id", 2),
    ("api key", "program_id", 2),
    ("api key", "key", "alg_chosen_secret"),
    ("api key", "prefix", "abcdef"),
]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_privileged_field_is_refused_naming_it(world: World, route: str) -> None:
    method, path, body = ROUTES[route]
    attacks = [(name, value) for r, name, value in ATTACKS if r == route]
    assert attacks, f"no privileged field tried on {route}"
    failures = []
    for name, value in attacks:
        before = world.fingerprint()
        response = world.client.request(method, path(world), json={**body(world), name: value},
                                        headers=world.headers(OPERATOR))
        got = (response.status_code, response.json().get("code"), response.json().get("field"))
        if got != (422, "validation_failed", name):
            failures.append(f"{name}={value!r} → {response.text[:200]}")
        if world.fingerprint() != before:
            failures.append(f"{name}={value!r} changed the database")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_the_same_body_without_the_field_succeeds(world: World, route: str) -> None:
    """The control: the bodies above are valid, so each refusal was the added field's doing."""
    method, path, body = ROUTES[route]
    before = world.fingerprint()
    response = world.client.request(method, path(world), json=body(world), headers=world.headers(OPERATOR))
    assert response.status_code in (200, 201), response.text
    assert world.fingerprint() != before


def test_privileged_field_inside_a_batch_names_its_index(world: World) -> None:
    before = world.fingerprint()
    batch = {"events": [_event(world), {**_event(world), "program_id": 2}]}
    response = world.client.post(f"{V1}/events", json=batch, headers=world.headers(OPERATOR))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "events[1].program_id"
    assert world.fingerprint() == before


def test_org_admin_cannot_move_a_person_to_another_organization(world: World) -> None:
    """The subtle one: an org admin may edit its people, but not re-home them into a neighbour."""
    before = world.fingerprint()
    response = world.client.patch(f"{V1}/participants/{world.sides[OWN].participant_id}",
                                  json={"organization_id": world.sides["foreign"].organization_id},
                                  headers=world.headers(ORG_ADMIN))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "organization_id"
    assert world.fingerprint() == before


NULLS = [("organizations", "organization_id", "status"), ("organizations", "organization_id", "name"),
         ("participants", "participant_id", "name"), ("participants", "participant_id", "consents")]


@pytest.mark.parametrize(("what", "id_name", "name"), NULLS, ids=[f"{w}.{n}" for w, _, n in NULLS])
def test_update_cannot_null_a_required_field(world: World, what: str, id_name: str, name: str) -> None:
    """Settable on update, but never to nothing: that is bad input, so 422 naming the field."""
    before = world.fingerprint()
    ident = getattr(world.sides[OWN], id_name)
    response = world.client.patch(f"{V1}/{what}/{ident}", json={name: None}, headers=world.headers(OPERATOR))
    assert world.fingerprint() == before
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("validation_failed", name)
