"""The referral recipe of docs/recipes.md through the API: a participant's code and link, a signup
registered by the integration, the first qualifying order converting it and rules rewarding both
sides, a self-referral held in the review queue until an operator approves it, and the errors a
client sees (unknown code, the same organization twice)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"
GOAL = {"behavior": "customers bring customers", "metric": "share of new customers referred",
        "expected_uplift": "+5 %"}
SCHEME = {"qualifying_event": "order.placed", "amount_field": "amount_minor", "min_amount": 50_000,
          "burst_max": 5, "burst_window_hours": 24, "link_base": "https://shop.example/join?ref="}
BOTH_SIDES = {"rules": [
    {"code": "referrer-bonus", "name": "1,000 points to the person who referred", "trigger": "referral.converted",
     "conditions": [{"field": "payload.side", "op": "eq", "value": "referrer"}],
     "action": {"kind": "fixed", "amount": 1_000}, "recipient": "participant", "goal": GOAL},
    {"code": "welcome-bonus", "name": "500 points to the new customer", "trigger": "referral.converted",
     "conditions": [{"field": "payload.side", "op": "eq", "value": "referred"}],
     "action": {"kind": "fixed", "amount": 500}, "recipient": "organization", "goal": GOAL}]}


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def organization(api: TestClient, key: str, name: str) -> int:
    return int(ok(api.post(f"{V1}/organizations", json={"external_id": uuid.uuid4().hex[:12], "name": name,
                                                        "kind": "customer"}, headers=headers(key)), 201)["id"])


def order(api: TestClient, key: str, organization_id: int, amount: int) -> None:
    ok(api.post(f"{V1}/events", json={"source_id": uuid.uuid4().hex, "type": "order.placed",
                                      "occurred_at": "2026-05-12T10:00:00Z", "organization_id": organization_id,
                                      "payload": {"amount_minor": amount}}, headers=headers(key)), 201)


def points(api: TestClient, key: str, organization_id: int, kind: str) -> int:
    accounts = ok(api.get(f"{V1}/accounts", params={"organization_id": organization_id}, headers=headers(key)))
    return sum(a["balance"] for a in accounts["items"] if a["kind"] == kind and a["unit"] == "PTS")


def test_referral_recipe_rewards_both_sides(api: TestClient, allegiance: Allegiance, program: ProgramFixture) -> None:
    operator = program.operator_key
    ok(api.put(f"{V1}/event-types/order.placed", json={"name": "order.placed"}, headers=headers(operator)))
    ok(api.put(f"{V1}/referrals/settings", json=SCHEME, headers=headers(operator)))
    types = {t["name"] for t in ok(api.get(f"{V1}/event-types", headers=headers(operator)))["items"]}
    assert {"referral.joined", "referral.converted"} <= types
    saved = ok(api.post(f"{V1}/rules/versions", json={"document": BOTH_SIDES, "note": "referrals"},
                        headers=headers(operator)), 201)
    ok(api.post(f"{V1}/rules/versions/{saved['version']}/activate", headers=headers(operator)))

    aqua = organization(api, operator, "Aqua Ltd")
    ann = ok(api.post(f"{V1}/participants", json={"organization_id": aqua, "external_id": uuid.uuid4().hex[:12],
                                                  "name": "Ann", "role": "owner", "email": "ann@aqua.example"},
                      headers=headers(operator)), 201)["id"]
    with allegiance.write() as uow:
        _, ann_key = uow.access.create_key(program.id, "ann", KeyRole.PARTICIPANT, organization_id=aqua,
                                           participant_id=ann)
        _, signup_key = uow.access.create_key(program.id, "signup", KeyRole.INTEGRATION)
    mine = ok(api.post(f"{V1}/referrals/codes", json={}, headers=headers(ann_key)))
    assert mine["link"] == f"https://shop.example/join?ref={mine['code']}"
    again = ok(api.post(f"{V1}/referrals/codes", json={}, headers=headers(ann_key)))
    assert again["code"] == mine["code"], "the same code until it is rotated"

    newco = organization(api, operator, "NewCo")
    referral = ok(api.post(f"{V1}/referrals", json={"code": mine["code"].lower(), "organization_id": newco,
                                                    "contact_email": "buyer@newco.example"},
                           headers=headers(signup_key)), 201)
    assert (referral["status"], referral["flags"]) == ("registered", [])
    order(api, operator, newco, 20_000)  # below the 500.00 minimum
    order(api, operator, newco, 80_000)
    converted = ok(api.get(f"{V1}/referrals/{referral['id']}", headers=headers(ann_key)))
    assert converted["status"] == "converted"
    assert points(api, operator, aqua, "personal") == 1_000
    assert points(api, operator, newco, "pool") == 500

    sister = organization(api, operator, "Aqua Services")
    suspicious = ok(api.post(f"{V1}/referrals", json={"code": mine["code"], "organization_id": sister,
                                                      "contact_email": "boss@aqua.example"},
                             headers=headers(signup_key)), 201)
    assert suspicious["flags"] == ["self_referral:same_email_domain"]
    order(api, operator, sister, 90_000)
    queue = ok(api.get(f"{V1}/referrals", params={"status": "held"}, headers=headers(operator)))["items"]
    assert [r["id"] for r in queue] == [suspicious["id"]]
    assert points(api, operator, aqua, "personal") == 1_000, "held, not credited"
    ok(api.post(f"{V1}/referrals/{suspicious['id']}/approve", json={"note": "separate company, checked"},
                headers=headers(operator)))
    assert points(api, operator, aqua, "personal") == 2_000

    unknown = api.post(f"{V1}/referrals", json={"code": "ZZZZZZZZZZ", "organization_id": organization(
        api, operator, "Other")}, headers=headers(signup_key))
    assert (unknown.status_code, unknown.json()["field"]) == (422, "code")
    twice = api.post(f"{V1}/referrals", json={"code": mine["code"], "organization_id": newco},
                     headers=headers(signup_key))
    assert (twice.status_code, twice.json()["code"]) == (409, "already_referred")
