"""Tier ladders, discount cards and store credit through the API: validation naming the field,
CRUD, the discount in the quote, and applying credit to an order (idempotent, capped, never
past the balance)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from allegiance.bootstrap import Allegiance
from tests import factories as f
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"
LADDER = {"code": "status", "name": "Status", "tiers": [
    {"code": "member", "name": "Member"},
    {"code": "gold", "name": "Gold", "discount_percent": "3",
     "requires": [{"measure": "count", "event_types": ["order.placed"], "at_least": 2}]}]}


def headers(key: str, idempotency: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency or uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def declare(api: TestClient, key: str, *names: str) -> None:
    for name in names:
        ok(api.put(f"{V1}/event-types/{name}", json={"name": name}, headers=headers(key)))


def test_ladders_are_validated_data_with_crud(api: TestClient, program: ProgramFixture) -> None:
    key = program.operator_key
    declare(api, key, "order.placed")
    bad = api.post(f"{V1}/tiers/ladders", json={"document": {**LADDER, "tiers": [
        {"code": "gold", "name": "Gold", "requires": [{"measure": "value", "event_types": ["order.placed"],
                                                       "at_least": 1}]}]}}, headers=headers(key))
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (422, "tier_ladder_invalid",
                                                                         "tiers[0].requires[0]")
    role = api.post(f"{V1}/tiers/ladders", json={"document": {**LADDER, "tiers": [
        {"code": "a", "name": "A", "benefits": [{"code": "x", "kind": "other", "name": "X", "roles": ["pilot"]}]}]}},
        headers=headers(key))
    assert (role.status_code, role.json()["field"]) == (422, "tiers[0].benefits[0].roles")
    undeclared = api.post(f"{V1}/tiers/ladders", json={"document": {**LADDER, "tiers": [
        {"code": "a", "name": "A", "requires": [{"measure": "count", "event_types": ["nope"], "at_least": 1}]}]}},
        headers=headers(key))
    assert (undeclared.status_code, undeclared.json()["field"]) == (422, "tiers[0].requires[0].event_types")

    created = ok(api.post(f"{V1}/tiers/ladders", json={"document": LADDER}, headers=headers(key)), 201)
    assert (created["code"], created["version"], created["level"]) == ("status", 1, "organization")
    again = api.post(f"{V1}/tiers/ladders", json={"document": LADDER}, headers=headers(key))
    assert (again.status_code, again.json()["code"]) == (409, "duplicate_tier_ladder")
    second = api.post(f"{V1}/tiers/ladders", json={"document": {**LADDER, "code": "other"}}, headers=headers(key))
    assert (second.status_code, second.json()["field"]) == (409, "level")
    renamed = {**LADDER, "name": "Status levels"}
    replaced = ok(api.put(f"{V1}/tiers/ladders/status", json={"document": renamed}, headers=headers(key)))
    assert (replaced["version"], replaced["document"]["name"]) == (2, "Status levels")
    mismatch = api.put(f"{V1}/tiers/ladders/status", json={"document": {**LADDER, "code": "x"}}, headers=headers(key))
    assert (mismatch.status_code, mismatch.json()["field"]) == (422, "code")
    assert [i["code"] for i in ok(api.get(f"{V1}/tiers/ladders", headers=headers(key)))["items"]] == ["status"]
    assert ok(api.get(f"{V1}/tiers/ladders/status", headers=headers(key)))["document"]["name"] == "Status levels"
    assert "ladder" in ok(api.get(f"{V1}/tiers/schema", headers=headers(key)))
    ok(api.delete(f"{V1}/tiers/ladders/status", headers=headers(key)))
    assert api.get(f"{V1}/tiers/ladders/status", headers=headers(key)).status_code == 404


def test_status_progress_and_the_tier_discount_in_the_quote(api: TestClient, program: ProgramFixture) -> None:
    key = program.operator_key
    declare(api, key, "order.placed")
    ok(api.post(f"{V1}/tiers/ladders", json={"document": LADDER}, headers=headers(key)), 201)
    org = ok(api.post(f"{V1}/organizations", json={"external_id": uuid.uuid4().hex[:10], "name": "Co"},
                      headers=headers(key)), 201)["id"]
    for _ in range(2):
        ok(api.post(f"{V1}/events", json={"source_id": uuid.uuid4().hex, "type": "order.placed",
                                          "occurred_at": datetime.now(UTC).isoformat(), "organization_id": org,
                                          "payload": {}}, headers=headers(key)), 201)
    status = ok(api.get(f"{V1}/organizations/{org}/tier", headers=headers(key)))
    assert (status["tier"], status["discount_percent"], status["measures"][0]["value"]) == ("gold", "3", 2)
    quote = ok(api.post(f"{V1}/quote", json={"organization_id": org, "type": "order.placed", "payload": {}},
                        headers=headers(key)))
    assert (quote["discount"]["percent"], quote["discount"]["source"]) == ("3", "tier")


def test_a_cumulative_card_grows_with_purchases(api: TestClient, program: ProgramFixture) -> None:
    key = program.operator_key
    declare(api, key, "order.placed")
    org = ok(api.post(f"{V1}/organizations", json={"external_id": uuid.uuid4().hex[:10], "name": "Co"},
                      headers=headers(key)), 201)["id"]

    def buy(amount: int) -> None:
        ok(api.post(f"{V1}/events", json={"source_id": uuid.uuid4().hex, "type": "order.placed",
                                          "occurred_at": datetime.now(UTC).isoformat(), "organization_id": org,
                                          "payload": {"amount_minor": amount}}, headers=headers(key)), 201)

    buy(40_000)  # before the card: counted when the card is set (no valid_from)
    bad = api.put(f"{V1}/organizations/{org}/discount-card", json={"card": {"kind": "cumulative", "steps": []}},
                  headers=headers(key))
    assert (bad.status_code, bad.json()["code"]) == (422, "discount_card_invalid")
    card = {"kind": "cumulative", "event_types": ["order.placed"],
            "steps": [{"from_amount": 0, "percent": "2"}, {"from_amount": 100_000, "percent": "5"}]}
    set_ = ok(api.put(f"{V1}/organizations/{org}/discount-card", json={"card": card}, headers=headers(key)))
    assert (set_["discount"]["percent"], set_["discount"]["remaining"]) == ("2", 60_000)
    buy(60_000)
    now = ok(api.get(f"{V1}/organizations/{org}/discount-card", headers=headers(key)))["discount"]
    assert (now["percent"], now["source"], now["cumulative"], now["next_percent"]) == ("5", "card", 100_000, None)
    fixed = ok(api.put(f"{V1}/organizations/{org}/discount-card", json={"card": {"kind": "fixed", "percent": "8"}},
                       headers=headers(key)))
    assert fixed["discount"]["percent"] == "8"


CREDIT_SETTINGS = {"units": [{"code": "PTS", "name": "Points"},
                             {"code": "EUR", "name": "Store credit", "scale": 2, "kind": "store_credit",
                              "spend_channels": ["webshop"], "max_per_order": 5_000}]}


def test_store_credit_applies_to_an_order_once_within_cap_and_balance(api: TestClient, allegiance: Allegiance,
                                                                      program: ProgramFixture) -> None:
    key = program.operator_key
    settings = ok(api.get(f"{V1}/programs/current", headers=headers(key)))["settings"]
    ok(api.put(f"{V1}/programs/current/settings", json={**settings, **CREDIT_SETTINGS}, headers=headers(key)))
    org = f.organization(allegiance, program.id)["id"]
    pool = f.pool_account(allegiance, program.id, org, unit="EUR")
    f.fund(allegiance, program.id, pool, 8_000)
    path = f"{V1}/organizations/{org}/store-credit/apply"
    body = {"reference": "INV-1", "amount": 3_000, "unit": "EUR", "channel": "webshop"}
    same = uuid.uuid4().hex
    applied = ok(api.post(path, json=body, headers=headers(key, same)), 201)
    assert (applied["balance_after"], applied["applied_to_reference"]) == (5_000, 3_000)
    replay = api.post(path, json=body, headers=headers(key, same))
    assert replay.headers.get("Idempotency-Hit") == "true" and replay.json() == applied
    over_cap = api.post(path, json={**body, "amount": 2_001}, headers=headers(key))
    assert (over_cap.status_code, over_cap.json()["code"], over_cap.json()["field"]) == (
        422, "store_credit_order_cap", "amount")
    for patch, field in (({"channel": "shop"}, "channel"), ({"unit": "PTS"}, "unit"), ({"amount": 0}, "amount")):
        refused = api.post(path, json={**body, **patch}, headers=headers(key))
        assert (refused.status_code, refused.json()["field"]) == (422, field), refused.text
    ok(api.post(path, json={**body, "reference": "INV-2", "amount": 5_000}, headers=headers(key)), 201)
    short = api.post(path, json={**body, "reference": "INV-3", "amount": 1}, headers=headers(key))
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_funds")
    spend = ok(api.get(f"{V1}/transactions/{applied['transaction_id']}", headers=headers(key)))
    assert (spend["kind"], spend["metadata"]["reference"]) == ("spend", "INV-1")
