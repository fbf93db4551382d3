"""The BWT co-op recipe of docs/recipes.md end to end through the API: a co-op unit, a rule that
accrues MDF on dealer purchases, an operator allocation, claims paid at 50 % divided by the number
of brands shown, and a €10,000 yearly dealer budget that refuses the claim taking the year past it."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fastapi.testclient import TestClient

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"
GOAL = {"behavior": "dealers advertise our products locally", "metric": "share of partner assortment",
        "expected_uplift": "+5 %"}
BWT_TERMS = {"unit": "MDF", "currency": "EUR", "formula": {"kind": "share_per_brand", "percent": "50"},
             "own_brands": ["BWT"], "yearly_budget": 1_000_000, "over_limit": "refuse",
             "activity_types": ["outdoor", "print", "online", "exhibition"]}
ACCRUAL = {"rules": [{
    "code": "mdf-accrual", "name": "2 % of dealer purchases into the co-op fund", "trigger": "order.placed",
    "conditions": [{"field": "organization.kind", "op": "eq", "value": "dealer"}],
    "action": {"kind": "percent", "percent": "2", "of": "payload.amount_minor", "unit": "MDF"},
    "recipient": "organization", "goal": GOAL}]}
PDF = b"%PDF-1.4\n% billboard layout\n"


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def setup_bwt(api: TestClient, allegiance: Allegiance, program: ProgramFixture) -> tuple[int, str]:
    """The program with an MDF unit, the BWT terms and the accrual rule; one dealer and its admin key."""
    key = program.operator_key
    settings = ok(api.get(f"{V1}/programs/current", headers=headers(key)))["settings"]
    units = [*settings["units"], {"code": "MDF", "name": "Co-op fund (EUR)", "scale": 2, "kind": "coop_fund"}]
    ok(api.put(f"{V1}/programs/current/settings", json={**settings, "units": units}, headers=headers(key)))
    ok(api.put(f"{V1}/event-types/order.placed", json={"name": "order.placed"}, headers=headers(key)))
    ok(api.put(f"{V1}/coop/settings", json=BWT_TERMS, headers=headers(key)))
    saved = ok(api.post(f"{V1}/rules/versions", json={"document": ACCRUAL, "note": "bwt"}, headers=headers(key)), 201)
    ok(api.post(f"{V1}/rules/versions/{saved['version']}/activate", headers=headers(key)))
    dealer = ok(api.post(f"{V1}/organizations", json={"external_id": uuid.uuid4().hex[:12], "name": "Aqua Dealer",
                                                      "kind": "dealer"}, headers=headers(key)), 201)["id"]
    with allegiance.write() as uow:
        _, admin_key = uow.access.create_key(program.id, "dealer admin", KeyRole.ORG_ADMIN, organization_id=dealer)
    return dealer, admin_key


def claim(api: TestClient, key: str, cost: int, brands: list[str], invoice: str, activity: str = "outdoor") -> Any:
    return api.post(f"{V1}/coop/claims", json={
        "activity_type": activity, "cost": cost, "currency": "EUR", "activity_date": "2026-04-10",
        "invoice_number": invoice, "brands": brands, "description": f"{activity} campaign"}, headers=headers(key))


def review(api: TestClient, key: str, claim_id: int) -> Any:
    ok(api.post(f"{V1}/coop/claims/{claim_id}/approve", headers=headers(key)))
    return ok(api.post(f"{V1}/coop/claims/{claim_id}/settle", json={"reference": f"CN-{claim_id}"},
                       headers=headers(key)))


def test_bwt_recipe(api: TestClient, allegiance: Allegiance, program: ProgramFixture) -> None:
    operator = program.operator_key
    dealer, admin = setup_bwt(api, allegiance, program)
    ok(api.post(f"{V1}/events", json={"source_id": uuid.uuid4().hex, "type": "order.placed",
                                      "occurred_at": "2026-03-01T10:00:00Z", "organization_id": dealer,
                                      "payload": {"amount_minor": 40_000_000}}, headers=headers(operator)), 201)
    fund = ok(api.get(f"{V1}/coop/organizations/{dealer}/fund", params={"year": 2026}, headers=headers(admin)))
    assert fund["balance"] == 800_000, "2 % of €400,000 accrued by the rule"
    ok(api.post(f"{V1}/coop/organizations/{dealer}/allocations", json={"amount": 700_000, "memo": "launch MDF"},
                headers=headers(operator)), 201)

    billboard = ok(claim(api, admin, 400_000, ["BWT"], "INV-2026-001"), 201)
    assert (billboard["status"], billboard["requested_amount"]) == ("submitted", 200_000)
    proof = ok(api.post(f"{V1}/coop/claims/{billboard['id']}/proofs", json={
        "filename": "billboard.pdf", "content_type": "application/pdf",
        "content_base64": base64.b64encode(PDF).decode()}, headers=headers(admin)), 201)
    assert proof["size"] == len(PDF)
    settled = review(api, operator, billboard["id"])
    assert (settled["status"], settled["approved_amount"]) == ("settled", 200_000)
    assert settled["settlement_transaction_id"] is not None

    magazine = ok(claim(api, admin, 300_000, ["BWT", "Grünbeck", "Judo"], "INV-2026-002", "print"), 201)
    assert (magazine["brand_count"], magazine["requested_amount"]) == (3, 50_000)
    assert review(api, operator, magazine["id"])["approved_amount"] == 50_000

    fund = ok(api.get(f"{V1}/coop/organizations/{dealer}/fund", params={"year": 2026}, headers=headers(admin)))
    assert (fund["balance"], fund["budget_used"], fund["budget_left"]) == (1_250_000, 250_000, 750_000)

    refused = claim(api, admin, 1_600_000, ["BWT"], "INV-2026-003", "exhibition")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["limit"], problem["field"]) == ("coop_limit_exceeded", "yearly_budget", "cost")
    assert "2026 co-op budget" in problem["detail"] and "750000 MDF left" in problem["detail"]

    duplicate = claim(api, admin, 10_000, ["BWT"], "inv 2026-001")
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate_invoice")
    listed = ok(api.get(f"{V1}/coop/claims", headers=headers(admin)))["items"]
    assert [c["status"] for c in listed] == ["settled", "settled"]
