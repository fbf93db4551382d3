"""The Yutinet and 1C recipes of docs/recipes.md, end to end through the API: a tier ladder as
data, orders and certifications as events, status that rises the same day, benefits each role
may see, the tier's discount in the quote, and catalog access that follows the tier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"
RUB = 100  # kopecks per rouble: amounts are integer minor units


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


class Recipe:
    def __init__(self, api: TestClient, allegiance: Allegiance, program: ProgramFixture) -> None:
        self.api, self.allegiance, self.program, self.op = api, allegiance, program, program.operator_key

    def configure(self, roles: list[str], types: list[str]) -> None:
        settings = ok(self.api.get(f"{V1}/programs/current", headers=headers(self.op)))["settings"]
        settings["roles"] += [{"code": r, "label": r.replace("_", " ")} for r in roles]
        ok(self.api.put(f"{V1}/programs/current/settings", json=settings, headers=headers(self.op)))
        for name in types:
            ok(self.api.put(f"{V1}/event-types/{name}", json={"name": name}, headers=headers(self.op)))

    def ladder(self, document: dict[str, Any]) -> None:
        ok(self.api.post(f"{V1}/tiers/ladders", json={"document": document}, headers=headers(self.op)), 201)

    def company(self, **values: Any) -> int:
        body = {"external_id": uuid.uuid4().hex[:12], "name": "Co", "kind": "customer", **values}
        return int(ok(self.api.post(f"{V1}/organizations", json=body, headers=headers(self.op)), 201)["id"])

    def person(self, org: int, role: str) -> tuple[int, str]:
        made = ok(self.api.post(f"{V1}/participants", json={
            "organization_id": org, "name": role, "external_id": uuid.uuid4().hex[:12], "role": role},
            headers=headers(self.op)), 201)
        with self.allegiance.write() as uow:
            _, key = uow.access.create_key(self.program.id, role, KeyRole.PARTICIPANT, organization_id=org,
                                           participant_id=made["id"])
        return int(made["id"]), key

    def event(self, type_: str, org: int, person: int | None = None, **payload: Any) -> None:
        ok(self.api.post(f"{V1}/events", json={
            "source_id": uuid.uuid4().hex, "type": type_, "occurred_at": datetime.now(UTC).isoformat(),
            "organization_id": org, "participant_id": person, "payload": payload}, headers=headers(self.op)), 201)

    def tier(self, org: int) -> dict[str, Any]:
        return dict(ok(self.api.get(f"{V1}/organizations/{org}/tier", headers=headers(self.op))))

    def benefits(self, org: int, key: str) -> set[str]:
        items = ok(self.api.get(f"{V1}/organizations/{org}/tier/benefits", headers=headers(key)))["items"]
        return {item["code"] for item in items}

    def discount(self, org: int) -> str:
        quote = ok(self.api.post(f"{V1}/quote", json={"organization_id": org, "type": "order.placed",
                                                      "payload": {"amount_minor": 1}}, headers=headers(self.op)))
        return str(quote["discount"]["percent"])


ORDERS = {"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor"}
YUTINET = {
    "code": "corporate-clients", "name": "Yutinet corporate terms", "window": {"kind": "rolling", "days": 365},
    "tiers": [
        {"code": "standard", "name": "Standard"},
        {"code": "corporate", "name": "Corporate", "discount_percent": "5",
         "requires": [{**ORDERS, "at_least": 1_000_000 * RUB}],
         "benefits": [
             {"code": "manager", "kind": "personal_manager", "name": "Your personal manager"},
             {"code": "off-catalog", "kind": "off_catalog_ordering", "name": "Order goods outside the catalog"},
             {"code": "asset-service", "kind": "free_service", "name": "Cloud asset records",
              "details": {"url": "https://assets.yutinet.example"},
              "roles": ["sysadmin", "facilities", "accountant"]}]}]}


def test_yutinet_recipe_corporate_terms_for_a_million_a_year(api: TestClient, allegiance: Allegiance,
                                                              program: ProgramFixture) -> None:
    shop = Recipe(api, allegiance, program)
    shop.configure(["sysadmin", "facilities"], ["order.placed"])
    shop.ladder(YUTINET)
    with allegiance.write() as uow:
        manager = uow.access.create_user(f"{uuid.uuid4().hex[:8]}@yutinet.example", "Olga Petrova", "pw-123456789")
    corporate = shop.company(account_manager_id=manager)
    small = shop.company()
    accountant, accountant_key = shop.person(corporate, "accountant")
    _, buyer_key = shop.person(corporate, "purchasing_manager")
    _, small_sysadmin_key = shop.person(small, "sysadmin")

    # given orders of 600,000 RUB: still Standard, 400,000 RUB to go
    shop.event("order.placed", corporate, accountant, amount_minor=600_000 * RUB)
    status = shop.tier(corporate)
    assert status["tier"] == "standard"
    assert status["progress"]["tier"] == "corporate"
    assert status["progress"]["criteria"][0]["remaining"] == 400_000 * RUB
    assert shop.discount(corporate) == "0"
    # when the yearly total crosses 1,000,000 RUB, then the client is Corporate at once
    shop.event("order.placed", corporate, None, amount_minor=450_000 * RUB)
    shop.event("order.placed", small, None, amount_minor=200_000 * RUB)
    status = shop.tier(corporate)
    assert status["tier"] == "corporate" and status["progress"] is None
    assert [(h["from_tier"], h["to_tier"], h["direction"]) for h in status["history"]] == [
        ("standard", "corporate", "up")]
    assert shop.discount(corporate) == "5" and shop.discount(small) == "0"

    # the accountant sees the asset service and her named manager
    seen = ok(api.get(f"{V1}/organizations/{corporate}/tier/benefits", headers=headers(accountant_key)))
    assert {item["code"] for item in seen["items"]} == {"manager", "off-catalog", "asset-service"}
    named = next(item for item in seen["items"] if item["code"] == "manager")
    assert named["details"]["manager"]["name"] == "Olga Petrova"
    # the buyer (not one of the three roles) gets the manager and off-catalog ordering, not the service
    assert shop.benefits(corporate, buyer_key) == {"manager", "off-catalog"}
    # a sysadmin of a non-corporate client does not see the service
    assert shop.benefits(small, small_sysadmin_key) == set()
    hidden = api.get(f"{V1}/organizations/{corporate}/tier/benefits", headers=headers(small_sysadmin_key))
    assert hidden.status_code == 404  # another client's benefits are not even there
    assert shop.benefits(corporate, shop.op) == {"manager", "off-catalog", "asset-service"}


SALES_YEAR = {**ORDERS, "at_least": 5_000_000 * RUB}
CERTIFIED_STAFF = {"measure": "participants", "event_types": ["certification.passed"], "at_least": 2}
ONE_C = {
    "code": "partner-levels", "name": "1C partner levels", "window": {"kind": "year"}, "grace_days": 30,
    "tiers": [
        {"code": "registered", "name": "Registered",
         "benefits": [{"code": "catalog", "kind": "catalog_access", "name": "Standard partner catalog"},
                      {"code": "margin", "kind": "other", "name": "Partner margin 20 %", "roles": ["owner"]}]},
        {"code": "certified", "name": "Certified", "discount_percent": "10", "earn_multiplier": "1.5",
         "requires": [SALES_YEAR, CERTIFIED_STAFF],
         "benefits": [{"code": "catalog", "kind": "catalog_access", "name": "Certified partner catalog"},
                      {"code": "margin", "kind": "other", "name": "Partner margin 30 %", "roles": ["owner"]}]},
        {"code": "gold", "name": "Gold", "discount_percent": "15", "earn_multiplier": "2",
         "requires": [{**ORDERS, "at_least": 20_000_000 * RUB}, {**CERTIFIED_STAFF, "at_least": 5}],
         "benefits": [{"code": "margin", "kind": "other", "name": "Partner margin 40 %", "roles": ["owner"]}]}]}


def test_1c_recipe_certified_the_same_day_with_its_benefits(api: TestClient, allegiance: Allegiance,
                                                             program: ProgramFixture) -> None:
    partners = Recipe(api, allegiance, program)
    partners.configure([], ["order.placed", "certification.passed"])
    partners.ladder(ONE_C)
    certified_only = ok(api.post(f"{V1}/catalog", json={
        "code": f"c{uuid.uuid4().hex[:8]}", "names": {"en": "Certified training kit"}, "category": "goods",
        "cost": 10, "availability": {"tiers": ["certified", "gold"]}}, headers=headers(partners.op)), 201)["id"]
    partner = partners.company(kind="reseller")
    _, owner_key = partners.person(partner, "owner")
    first, _ = partners.person(partner, "engineer")
    second, engineer_key = partners.person(partner, "engineer")

    def catalog(key: str) -> set[int]:
        return {i["id"] for i in ok(api.get(f"{V1}/catalog", params={"limit": 200}, headers=headers(key)))["items"]}

    # given a partner with one certified engineer and 3,000,000 RUB of sales this year
    partners.event("certification.passed", partner, first, course="1C:Professional")
    partners.event("order.placed", partner, None, amount_minor=3_000_000 * RUB)
    status = partners.tier(partner)
    assert status["tier"] == "registered"
    assert [(c["measure"], c["remaining"]) for c in status["progress"]["criteria"]] == [
        ("value", 2_000_000 * RUB), ("participants", 1)]
    assert certified_only not in catalog(owner_key)
    # when the second employee passes certification, sales are still short: no change
    partners.event("certification.passed", partner, second, course="1C:Professional")
    assert partners.tier(partner)["tier"] == "registered"
    # when sales cross 5,000,000 RUB, then it is Certified the same day, with the new benefits
    partners.event("order.placed", partner, None, amount_minor=2_500_000 * RUB)
    status = partners.tier(partner)
    assert status["tier"] == "certified"
    assert status["since"][:10] == datetime.now(UTC).date().isoformat()
    assert status["history"][0]["direction"] == "up" and status["history"][0]["to_tier"] == "certified"
    assert status["progress"]["tier"] == "gold"
    owner_sees = ok(api.get(f"{V1}/organizations/{partner}/tier/benefits", headers=headers(owner_key)))
    assert {i["code"]: i["name"] for i in owner_sees["items"]} == {"catalog": "Certified partner catalog",
                                                                    "margin": "Partner margin 30 %"}
    assert partners.benefits(partner, engineer_key) == {"catalog"}  # the margin terms are the owner's
    assert partners.discount(partner) == "10"
    assert certified_only in catalog(owner_key)
