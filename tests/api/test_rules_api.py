"""Earning rules through the API, as an operator and a participant would use them: the MaxPerks
and SuperSeller recipes of docs/recipes.md end to end (configure, declare, save, activate,
events, balances, statement, standing, quote, spending store credit only where it was earned)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance
from tests.conftest import ProgramFixture

GOAL = {"behavior": "buy online and recycle", "metric": "repeat customer rate", "expected_uplift": "+3 %"}


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def setup_program(api: TestClient, key: str, settings_patch: dict[str, Any], types: list[str]) -> None:
    settings = ok(api.get("/api/v1/programs/current", headers=headers(key)))["settings"]
    ok(api.put("/api/v1/programs/current/settings", json={**settings, **settings_patch}, headers=headers(key)))
    for name in types:
        ok(api.put(f"/api/v1/event-types/{name}", json={"name": name},
                   headers=headers(key)))


def activate(api: TestClient, key: str, document: dict[str, Any]) -> int:
    saved = ok(api.post("/api/v1/rules/versions", json={"document": document, "note": "recipe"}, headers=headers(key)),
               201)
    return int(ok(api.post(f"/api/v1/rules/versions/{saved['version']}/activate", headers=headers(key)))["version"])


def org_and_person(api: TestClient, key: str, **org: Any) -> tuple[int, int]:
    created = ok(api.post("/api/v1/organizations", json={"external_id": uuid.uuid4().hex[:12], "name": "Co",
                                                         "kind": "customer", **org}, headers=headers(key)), 201)
    person = ok(api.post("/api/v1/participants", json={"organization_id": created["id"], "name": "Pat",
                                                       "external_id": uuid.uuid4().hex[:12], "role": "owner"},
                         headers=headers(key)), 201)
    return created["id"], person["id"]


def event(api: TestClient, key: str, type_: str, payload: dict[str, Any], org: int, person: int | None,
          at: str = "2026-05-12T10:00:00Z") -> Any:
    return ok(api.post("/api/v1/events", json={"source_id": uuid.uuid4().hex, "type": type_, "occurred_at": at,
                                               "organization_id": org, "participant_id": person,
                                               "payload": payload}, headers=headers(key)), 201)


def balance_of(api: TestClient, key: str, person: int, unit: str) -> int:
    accounts = ok(api.get("/api/v1/accounts", params={"participant_id": person}, headers=headers(key)))["items"]
    return sum(a["balance"] for a in accounts if a["unit"] == unit and a["kind"] == "personal")


MAXPERKS = {
    "rules": [
        {"code": "online-cashback", "name": "2 % of online spend back", "trigger": "order.placed",
         "conditions": [{"field": "payload.channel", "op": "eq", "value": "online"},
                        {"field": "organization.segment", "op": "in",
                         "value": ["small_business", "school", "university", "teacher"]}],
         "action": {"kind": "percent", "percent": "2", "of": "payload.amount_minor", "unit": "USD"},
         "key": "payload.order_id", "goal": GOAL},
        {"code": "recycling", "name": "$1 per recycled cartridge", "trigger": "cartridge.recycled",
         "action": {"kind": "per_unit", "amount": 100, "per": "payload.quantity", "unit": "USD"}, "goal": GOAL},
    ],
    "caps": [{"code": "monthly-100", "scope": "participant", "period": "month", "unit": "USD", "max_amount": 10_000}],
}


def test_maxperks_recipe(api: TestClient, allegiance: Allegiance, program: ProgramFixture) -> None:
    key = program.operator_key
    setup_program(api, key, {
        "units": [{"code": "PTS", "name": "Points"},
                  {"code": "USD", "name": "MaxPerks dollars", "scale": 2, "kind": "store_credit",
                   "spend_channels": ["online_store"]}],
        "award_split": {"mode": "participant"}}, ["order.placed", "cartridge.recycled"])
    version = activate(api, key, MAXPERKS)
    teacher_org, teacher = org_and_person(api, key, segment="teacher")
    business, owner = org_and_person(api, key, segment="small_business")

    quote = ok(api.post("/api/v1/quote", json={"organization_id": teacher_org, "participant_id": teacher,
                                               "type": "order.placed", "occurred_at": "2026-05-12T10:00:00Z",
                                               "payload": {"channel": "online", "amount_minor": 200_000}},
                        headers=headers(key)))
    assert quote["totals"] == {"USD": 4_000} and quote["awards"][0]["rule"] == "online-cashback"

    event(api, key, "order.placed", {"channel": "online", "amount_minor": 200_000, "order_id": "T1"}, teacher_org,
          teacher)
    event(api, key, "cartridge.recycled", {"quantity": 15}, teacher_org, teacher)
    assert balance_of(api, key, teacher, "USD") == 5_500
    event(api, key, "order.placed", {"channel": "online", "amount_minor": 500_000, "order_id": "B1"}, business, owner)
    event(api, key, "cartridge.recycled", {"quantity": 30}, business, owner)
    assert balance_of(api, key, owner, "USD") == 10_000

    statement = ok(api.get(f"/api/v1/organizations/{business}/statement", headers=headers(key)))["items"]
    assert sum(item["capped"] for item in statement) == 3_000
    assert {item["rule_set_version"] for item in statement} == {version}
    assert any("monthly-100" in item["caps_hit"] for item in statement)

    with allegiance.write() as uow:
        _, participant_key = uow.access.create_key(program.id, "teacher", KeyRole.PARTICIPANT,
                                                   organization_id=teacher_org, participant_id=teacher)
    standing = ok(api.get(f"/api/v1/participants/{teacher}/standing", headers=headers(participant_key)))["items"]
    assert standing, "the teacher sees the rules she earns from"
    assert all(item["trigger"] in ("order.placed", "cartridge.recycled") for item in standing)

    account = next(a for a in ok(api.get("/api/v1/accounts", params={"participant_id": teacher},
                                         headers=headers(key)))["items"] if a["unit"] == "USD")
    refused = api.post("/api/v1/transactions/spends", json={"account_id": account["id"], "amount": 1_000,
                                                             "channel": "retail_store"}, headers=headers(key))
    assert refused.status_code == 422 and refused.json()["field"] == "channel"
    assert balance_of(api, key, teacher, "USD") == 5_500
    ok(api.post("/api/v1/transactions/spends", json={"account_id": account["id"], "amount": 1_000,
                                                     "channel": "online_store", "reference": "order-77"},
                headers=headers(key)), 201)
    assert balance_of(api, key, teacher, "USD") == 4_500


def test_superseller_recipe(api: TestClient, program: ProgramFixture) -> None:
    """Miles per business/first-class ticket to the agent personally; nothing for economy."""
    key = program.operator_key
    setup_program(api, key, {"units": [{"code": "PTS", "name": "Points"}, {"code": "MILES", "name": "Miles",
                                                                             "kind": "miles"}],
                             "default_unit": "MILES"}, ["ticket.sold"])
    per_class = [("business", 500), ("first", 1_000)]
    activate(api, key, {"rules": [
        {"code": f"{fare}-class", "name": f"{fare.title()} class miles", "trigger": "ticket.sold",
         "lines": {"path": "payload.tickets", "conditions": [{"field": "line.fare_class", "op": "eq", "value": fare}]},
         "action": {"kind": "per_unit", "amount": miles, "per": "line.quantity"}, "recipient": "participant",
         "goal": GOAL} for fare, miles in per_class]})
    agency, agent = org_and_person(api, key, kind="other")
    event(api, key, "ticket.sold", {"tickets": [{"fare_class": "business", "quantity": 10},
                                                {"fare_class": "first", "quantity": 5},
                                                {"fare_class": "economy", "quantity": 30}]}, agency, agent)
    assert balance_of(api, key, agent, "MILES") == 10_000
    accounts = ok(api.get("/api/v1/accounts", params={"organization_id": agency}, headers=headers(key)))["items"]
    assert sum(a["balance"] for a in accounts if a["kind"] == "pool") == 0


def test_rule_errors_name_the_field_and_edits_version(api: TestClient, program: ProgramFixture) -> None:
    key = program.operator_key
    setup_program(api, key, {}, ["order.placed"])
    bad = api.post("/api/v1/rules/versions", json={"document": {"rules": [
        {"code": "x", "name": "X", "trigger": "order.placed",
         "conditions": [{"field": "payload.total", "op": "around", "value": 1}],
         "action": {"kind": "fixed", "amount": 1}}]}}, headers=headers(key))
    assert bad.status_code == 422
    assert bad.json()["field"] == "rules[0].conditions[0].op"
    first = activate(api, key, {"rules": [{"code": "x", "name": "X", "trigger": "order.placed",
                                           "action": {"kind": "fixed", "amount": 1}, "goal": GOAL}]})
    edited = ok(api.put("/api/v1/rules/draft/rules/x", json={"rule": {"name": "X2", "trigger": "order.placed",
                                                                      "action": {"kind": "fixed", "amount": 2},
                                                                      "goal": GOAL}}, headers=headers(key)))
    assert edited["version"] == first + 1 and edited["status"] == "draft"
    assert ok(api.get("/api/v1/rules/active", headers=headers(key)))["version"] == first  # not live until activated
    unknown = api.put("/api/v1/rules/draft/rules/x", json={"rule": {"name": "X", "trigger": "order.placed",
                                                                    "action": {"kind": "fixed", "amount": 2},
                                                                    "colour": "red"}}, headers=headers(key))
    assert unknown.status_code == 422 and unknown.json()["field"] == "colour"
    versions = ok(api.get("/api/v1/rules/versions", headers=headers(key)))["items"]
    assert [v["status"] for v in versions] == ["draft", "active"]
    again = api.post(f"/api/v1/rules/versions/{first}/activate", headers=headers(key))
    assert again.status_code == 409


def test_allbiz_recipe_top_dealers_get_entitlements_to_resell(api: TestClient, allegiance: Allegiance,
                                                               program: ProgramFixture) -> None:
    """A quarterly dealer ranking; the top 10 get 5 ad packages and 5 ranking boosts, the 11th
    nothing; a dealer passes packages on to an end client and the hand-over is logged."""
    key = program.operator_key
    setup_program(api, key, {}, ["order.placed"])
    activate(api, key, {"contests": [{
        "code": "top-dealers", "name": "Hunting for Allbiz", "period": "quarter",
        "measure": {"event_types": ["order.placed"], "field": "payload.amount_minor"},
        "conditions": [{"field": "organization.kind", "op": "eq", "value": "dealer"}], "top": 10,
        "prizes": [{"kind": "benefit", "code": "teaser-ads", "description": "Teaser ad package", "quantity": 5},
                   {"kind": "benefit", "code": "ranking-boost", "description": "Catalog ranking boost",
                    "quantity": 5}],
        "goal": {"behavior": "sell more through dealers", "metric": "dealer sales", "expected_uplift": "+8 %"}}]})
    dealers = [org_and_person(api, key, kind="dealer")[0] for _ in range(11)]
    customer = org_and_person(api, key, kind="customer")[0]
    for rank, dealer in enumerate(dealers):
        event(api, key, "order.placed", {"amount_minor": (20 - rank) * 1_000}, dealer, None, at="2026-02-10T09:00:00Z")
    event(api, key, "order.placed", {"amount_minor": 10**9}, customer, None, at="2026-02-10T09:00:00Z")
    event(api, key, "order.placed", {"amount_minor": 10**9}, dealers[10], None, at="2026-04-02T09:00:00Z")  # Q2

    early = api.post("/api/v1/rules/contests/top-dealers/close", json={"period": "2030-Q1"}, headers=headers(key))
    assert early.status_code == 422 and early.json()["field"] == "period"
    closed = ok(api.post("/api/v1/rules/contests/top-dealers/close", json={"period": "2026-Q1"},
                         headers=headers(key)))
    assert closed["winners"] == dealers[:10]
    assert customer not in [r["organization_id"] for r in closed["ranking"]]  # only dealers compete
    again = api.post("/api/v1/rules/contests/top-dealers/close", json={"period": "2026-Q1"}, headers=headers(key))
    assert again.status_code == 409 and again.json()["code"] == "contest_already_closed"

    assert ok(api.get(f"/api/v1/organizations/{dealers[10]}/benefits", headers=headers(key)))["items"] == []
    benefits = ok(api.get(f"/api/v1/organizations/{dealers[0]}/benefits", headers=headers(key)))["items"]
    assert sorted((b["benefit"], b["quantity"]) for b in benefits) == [("ranking-boost", 5), ("teaser-ads", 5)]
    ads = next(b for b in benefits if b["benefit"] == "teaser-ads")
    with allegiance.write() as uow:
        _, admin_key = uow.access.create_key(program.id, "dealer admin", KeyRole.ORG_ADMIN,
                                             organization_id=dealers[0])
    assigned = ok(api.post(f"/api/v1/benefits/{ads['id']}/assignments",
                           json={"quantity": 2, "assignee_ref": "client-42", "assignee_name": "Client 42 Ltd"},
                           headers=headers(admin_key)), 201)
    assert assigned["remaining"] == 3 and assigned["assignments"][0]["assignee_ref"] == "client-42"
    too_many = api.post(f"/api/v1/benefits/{ads['id']}/assignments",
                        json={"quantity": 4, "assignee_ref": "client-43", "assignee_name": "Client 43"},
                        headers=headers(admin_key))
    assert too_many.status_code == 409 and too_many.json()["field"] == "quantity"
    listing = ok(api.get("/api/v1/benefits/assignments", params={"assignee_ref": "client-42"}, headers=headers(key)))
    assert [(a["award_id"], a["quantity"]) for a in listing["items"]] == [(ads["id"], 2)]
