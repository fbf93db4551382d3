"""Every API route × every kind of caller × whose object it is → the status the policy promises.

The routes come from the app's own route table, so a new route that is not in ``EXPECTED`` fails
here until someone writes down who may call it (deny by default). For each cell the test also
proves that a refused request wrote nothing (a digest of every row of every table is unchanged),
that an allowed write did write, and that an object out of reach answers exactly like one that
does not exist (same status, same body apart from the ids), so ids of other tenants can't be probed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute

from allegiance.api.app import create_api
from allegiance.bootstrap import build
from allegiance.config import Settings
from tests.api.conftest import (
    CALLERS,
    EVENT_TYPE,
    FOREIGN,
    INTEGRATION,
    MALFORMED,
    NO_KEY,
    OPERATOR,
    ORG_ADMIN,
    OTHER,
    OWN,
    OWNERS,
    PARTICIPANT,
    QUIET,
    REVOKED,
    Side,
    World,
)

pytestmark = [QUIET]

PUBLIC = {("GET", "/healthz")}  # the only routes outside /api/v1, and the only ones without a key
NOWHERE = "nonexistent"
MISSING = 987_654_321
UNAUTHENTICATED = (NO_KEY, REVOKED, MALFORMED)

# How far a role reaches: the whole program, its organization (and subtree), or only itself.
PROGRAM, ORG, SELF = "program", "org", "self"


def route_table() -> list[tuple[str, str]]:
    """(method, path template) of every API route, read from a freshly built app."""
    app = create_api(build(Settings(database_url="sqlite:///:memory:")))
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI ≥ 0.16x nests included routers

        routes = [(c.original_route, c.path, c.methods) for c in iter_route_contexts(app.routes)]
    except ImportError:  # pragma: no cover - older FastAPI flattens app.routes itself
        routes = [(r, r.path, r.methods) for r in app.routes]
    return sorted((method, path) for route, path, methods in routes if isinstance(route, APIRoute)
                  for method in methods or ())


@dataclass
class Req:
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[World, str], Req]


@dataclass(frozen=True)
class Rule:
    """What one route promises. Callers not in ``reach`` get 403; bad credentials always 401."""

    ok: int
    reach: dict[str, str]
    build: Builder
    owner: str = "path"  # what the owner dimension varies: an id in the "path", in the "body", or "none"
    refused: int = 404  # an object out of reach, which must equal what a nonexistent one answers
    write: bool = False
    items: Callable[[dict[str, Any]], Any] | None = None  # list routes: an item's organization id

    def expect(self, caller: str, owner: str) -> int:
        if caller in UNAUTHENTICATED:
            return 401
        reach = self.reach.get(caller)
        if reach is None:
            return 403
        if owner == OWN or (owner == FOREIGN and reach == PROGRAM):
            return self.ok
        return self.refused


def side(world: World, owner: str) -> Side:
    if owner == NOWHERE:
        return Side(MISSING, MISSING, MISSING, MISSING, MISSING)
    return world.sides[owner]


def fresh(make: Callable[[World, str], int]) -> Callable[[World, str], int]:
    """An object made for this one request (it is consumed by it), or a missing id."""
    return lambda world, owner: MISSING if owner == NOWHERE else make(world, owner)


new_hold = fresh(World.hold)
new_award = fresh(World.award)
new_participant = fresh(World.participant)
new_key = fresh(World.key)
new_event = fresh(World.event)


def seeded(world: World, path: str) -> Req:
    """A list route, with a hold and an event on every side so that each list has something to leak."""
    for owner in OWNERS:
        world.hold(owner)
        world.event(owner)
    return Req(path)


def org_of(item: dict[str, Any]) -> Any:
    return item["organization_id"]


READERS = {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: SELF}
V1 = "/api/v1"

EXPECTED: dict[tuple[str, str], Rule] = {
    ("GET", f"{V1}/programs"): Rule(200, READERS, lambda w, o: Req(f"{V1}/programs"), owner="none"),
    ("GET", f"{V1}/programs/current"): Rule(200, READERS, lambda w, o: Req(f"{V1}/programs/current"), owner="none"),
    # -- organizations
    ("GET", f"{V1}/organizations"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/organizations"),
                                         owner="none", items=lambda i: i["id"]),
    ("POST", f"{V1}/organizations"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", refused=422, write=True,
        build=lambda w, o: Req(f"{V1}/organizations", {"external_id": w.ref("org"), "name": "New Co",
                                                        "parent_id": side(w, o).organization_id})),
    ("GET", f"{V1}/organizations/{{organization_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}")),
    ("PATCH", f"{V1}/organizations/{{organization_id}}"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}", {"segment": w.ref("seg")})),
    # -- participants
    ("GET", f"{V1}/participants"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/participants"),
                                        owner="none", items=org_of),
    ("POST", f"{V1}/participants"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, owner="body", refused=422, write=True,
        build=lambda w, o: Req(f"{V1}/participants", {"organization_id": side(w, o).organization_id,
                                                       "external_id": w.ref("p"), "name": "New Person",
                                                       "role": "engineer"})),
    ("GET", f"{V1}/participants/{{participant_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/participants/{side(w, o).participant_id}")),
    ("PATCH", f"{V1}/participants/{{participant_id}}"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/participants/{side(w, o).participant_id}", {"name": w.ref("name")})),
    ("POST", f"{V1}/participants/{{participant_id}}/leave"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/participants/{new_participant(w, o)}/leave", {"reason": "moved on"})),
    # -- accounts
    ("GET", f"{V1}/accounts"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/accounts"), owner="none",
                                    items=org_of),
    ("GET", f"{V1}/accounts/{{account_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/accounts/{side(w, o).personal_account_id}")),
    ("GET", f"{V1}/accounts/{{account_id}}/postings"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/accounts/{side(w, o).personal_account_id}/postings")),
    # -- transactions
    ("GET", f"{V1}/transactions"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/transactions"),
                                        owner="none", items=org_of),
    ("GET", f"{V1}/transactions/{{transaction_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/transactions/{new_award(w, o)}")),
    ("POST", f"{V1}/transactions/awards"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/awards", {"organization_id": side(w, o).organization_id,
                                                              "participant_id": side(w, o).participant_id,
                                                              "amount": 10})),
    ("POST", f"{V1}/transactions/spends"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/spends", {"account_id": side(w, o).personal_account_id,
                                                              "amount": 10})),
    ("POST", f"{V1}/transactions/adjustments"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/adjustments", {"account_id": side(w, o).personal_account_id,
                                                                   "amount": 5, "memo": "correction"})),
    ("POST", f"{V1}/transactions/transfers"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/transfers", {
            "from_account_id": side(w, o).personal_account_id, "to_account_id": side(w, o).pool_account_id,
            "amount": 10})),
    ("POST", f"{V1}/transactions/{{transaction_id}}/reverse"): Rule(
        201, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/transactions/{new_award(w, o)}/reverse", {"memo": "undo"})),
    # -- holds
    ("GET", f"{V1}/holds"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/holds"), owner="none",
                                 items=org_of),
    ("POST", f"{V1}/holds"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/holds", {"account_id": side(w, o).personal_account_id, "amount": 10})),
    ("GET", f"{V1}/holds/{{hold_id}}"): Rule(200, READERS, lambda w, o: Req(f"{V1}/holds/{new_hold(w, o)}")),
    ("POST", f"{V1}/holds/{{hold_id}}/post"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/holds/{new_hold(w, o)}/post", {})),
    ("POST", f"{V1}/holds/{{hold_id}}/void"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/holds/{new_hold(w, o)}/void")),
    # -- events
    ("POST", f"{V1}/events"): Rule(
        201, {OPERATOR: PROGRAM, INTEGRATION: PROGRAM}, owner="body", refused=422, write=True,
        build=lambda w, o: Req(f"{V1}/events", {"source_id": w.ref("src"), "type": EVENT_TYPE,
                                                "occurred_at": datetime.now(UTC).isoformat(),
                                                "organization_id": side(w, o).organization_id,
                                                "payload": {"amount_minor": 3}})),
    ("GET", f"{V1}/events"): Rule(200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, lambda w, o: seeded(w, f"{V1}/events"),
                                  owner="none", items=org_of),
    ("GET", f"{V1}/events/{{event_id}}"): Rule(200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG},
                                               lambda w, o: Req(f"{V1}/events/{new_event(w, o)}")),
    ("GET", f"{V1}/event-types"): Rule(200, READERS, lambda w, o: Req(f"{V1}/event-types"), owner="none"),
    ("PUT", f"{V1}/event-types/{{name}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: (lambda name: Req(f"{V1}/event-types/{name}", {"name": name}))(
            f"matrix.t{uuid.uuid4().hex[:8]}")),
    # -- api keys
    ("GET", f"{V1}/api-keys"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/api-keys"), owner="none"),
    ("POST", f"{V1}/api-keys"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/api-keys", {"name": "new", "role": "org_admin",
                                                  "organization_id": side(w, o).organization_id})),
    ("DELETE", f"{V1}/api-keys/{{key_id}}"): Rule(
        204, {OPERATOR: PROGRAM}, write=True, build=lambda w, o: Req(f"{V1}/api-keys/{new_key(w, o)}")),
}

ROUTES = [r for r in route_table() if r not in PUBLIC]


def test_every_route_is_in_the_table_and_public_routes_are_known() -> None:
    found = set(route_table())
    assert found - PUBLIC - set(EXPECTED) == set(), "routes nobody wrote an expectation for (deny by default)"
    assert set(EXPECTED) - found == set(), "expectations for routes that no longer exist"
    assert all(path.startswith(f"{V1}/") for _, path in found - PUBLIC)


def test_public_health_needs_no_key(world: World) -> None:
    response = world.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def normalized(body: dict[str, Any]) -> dict[str, Any]:
    """A problem body with the ids taken out of its text, so two 404s can be compared."""
    return {k: re.sub(r"\d+", "N", v) if isinstance(v, str) else v for k, v in body.items()}


def send(world: World, method: str, req: Req, caller: str) -> Any:
    return world.client.request(method, req.path, json=req.json, params=req.params, headers=world.headers(caller))


def check_items(world: World, rule: Rule, caller: str, body: dict[str, Any]) -> list[str]:
    """A list answers only what the caller may see: never another program's, never a neighbour's."""
    assert rule.items is not None
    seen = {rule.items(item) for item in body["items"]}
    own, foreign, other = (world.sides[o].organization_id for o in OWNERS)
    problems = []
    if other in seen:
        problems.append("lists another program's objects")
    if caller == OPERATOR and foreign not in seen:
        problems.append("operator does not see the foreign organization's objects")
    if caller in (ORG_ADMIN, PARTICIPANT) and seen != {own}:
        problems.append(f"scoped list shows organizations {seen}, expected only {{{own}}}")
    return problems


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p.removeprefix(V1)}" for m, p in ROUTES])
def test_authorization_matrix(world: World, route: tuple[str, str]) -> None:
    assert route in EXPECTED, f"{route} has no expectation: every route must be listed (deny by default)"
    method, _ = route
    rule = EXPECTED[route]
    failures: list[str] = []
    for caller in CALLERS:
        for owner in OWNERS if rule.owner != "none" else (OWN,):
            req = rule.build(world, owner)
            before = world.fingerprint()
            response = send(world, method, req, caller)
            wrote = world.fingerprint() != before
            expected = rule.expect(caller, owner)
            where = f"{caller} on {owner}'s object: {method} {req.path} {req.json}"
            if response.status_code != expected:
                failures.append(f"{where} → {response.status_code}, expected {expected}: {response.text[:300]}")
                continue
            if expected >= 400:
                body = response.json()
                if response.headers["content-type"] != "application/problem+json":
                    failures.append(f"{where}: content-type {response.headers['content-type']}")
                if wrote:
                    failures.append(f"{where}: refused with {expected} but the database changed")
                if expected == 401 and response.headers.get("www-authenticate") != "Bearer":
                    failures.append(f"{where}: 401 without WWW-Authenticate: Bearer")
                if expected in (401, 403) and body.get("code") != {401: "unauthenticated", 403: "forbidden"}[expected]:
                    failures.append(f"{where}: code {body.get('code')}")
                if expected == rule.refused and caller not in UNAUTHENTICATED:
                    missing = send(world, method, rule.build(world, NOWHERE), caller)
                    if (missing.status_code, normalized(missing.json())) != (expected, normalized(body)):
                        failures.append(f"{where}: out of reach answers {body}, a missing id answers "
                                        f"{missing.status_code} {missing.json()}")
            elif wrote != rule.write:
                failures.append(f"{where}: {'a read wrote' if wrote else 'an allowed write wrote nothing'}")
            elif rule.items is not None:
                failures.extend(f"{where}: {p}" for p in check_items(world, rule, caller, response.json()))
    assert not failures, "\n".join(failures)
