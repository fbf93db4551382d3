"""Coalition partners through the API: a bank registered by the operator earns and redeems points
for a company's people with its own key, which reaches no other partner; reversals, receipts that
count once, and the settlement report (JSON and CSV)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from allegiance.bootstrap import Allegiance
from allegiance.storage.verify import verify
from tests import factories as f
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"


def headers(key: str, idempotency: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency or uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def register(api: TestClient, key: str, code: str, **values: Any) -> dict[str, Any]:
    body = {"code": code, "name": code.title(), "issue_rate": {"minor": 1}, "redeem_rate": {"minor": 8,
                                                                                        "per_points": 10}, **values}
    return ok(api.post(f"{V1}/partners", json=body, headers=headers(key)), 201)  # type: ignore[no-any-return]


def test_a_partner_earns_redeems_reverses_and_settles_through_its_own_key(
        allegiance: Allegiance, program: ProgramFixture, api: TestClient) -> None:
    # given a bank and an airline, and a key bound to the bank
    op = program.operator_key
    bank = register(api, op, "bank")
    airline = register(api, op, "airline")
    key = ok(api.post(f"{V1}/partners/{bank['id']}/keys", json={"name": "bank pos"}, headers=headers(op)), 201)
    assert key["role"] == "integration"
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    bank_key = key["key"]
    # when the bank reports a purchase worth 2,000 points by the person
    purchase = {"reference": "rcpt-1", "organization_id": org["id"], "participant_id": person["id"], "points": 2000}
    earned = ok(api.post(f"{V1}/partners/{bank['id']}/earnings", json=purchase, headers=headers(bank_key)), 201)
    # then the points are split (70/30) and the bank's account carries the debit
    pool = ok(api.get(f"{V1}/accounts/{f.pool_account(allegiance, program.id, org['id'])}", headers=headers(op)))
    assert pool["balance"] == 1400
    bank_account = ok(api.get(f"{V1}/accounts/{bank['account_id']}", headers=headers(op)))
    assert (bank_account["kind"], bank_account["balance"]) == ("partner", -2000)
    # and the same receipt again (another Idempotency-Key) answers 200 with the first result
    again = ok(api.post(f"{V1}/partners/{bank['id']}/earnings", json=purchase, headers=headers(bank_key)), 200)
    assert (again["duplicate"], again["transaction_id"]) == (True, earned["transaction_id"])
    conflict = api.post(f"{V1}/partners/{bank['id']}/earnings", json={**purchase, "points": 5},
                        headers=headers(bank_key))
    assert (conflict.status_code, conflict.json()["code"], conflict.json()["field"]) == (
        409, "partner_reference_conflict", "reference")
    # and the bank's key cannot act for the airline: it answers like a missing partner
    foreign = api.post(f"{V1}/partners/{airline['id']}/earnings", json={**purchase, "reference": "x"},
                       headers=headers(bank_key))
    missing = api.post(f"{V1}/partners/987654/earnings", json={**purchase, "reference": "x"},
                       headers=headers(bank_key))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["field"] == missing.json()["field"] == "partner_id"
    # when the person spends 500 with the bank, more than they have is refused
    spend = {"reference": "pay-1", "organization_id": org["id"], "participant_id": person["id"], "points": 500}
    short = api.post(f"{V1}/partners/{bank['id']}/redemptions", json={**spend, "points": 601},
                     headers=headers(bank_key))
    assert (short.status_code, short.json()["code"], short.json()["available"]) == (409, "insufficient_funds", 600)
    redeemed = ok(api.post(f"{V1}/partners/{bank['id']}/redemptions", json=spend, headers=headers(bank_key)), 201)
    # and the redemption is reversed (a return), once
    undo = ok(api.post(f"{V1}/partners/{bank['id']}/operations/{redeemed['id']}/reverse", json={"memo": "return"},
                       headers=headers(bank_key)), 201)
    assert undo["reversal_transaction_id"]
    twice = api.post(f"{V1}/partners/{bank['id']}/operations/{redeemed['id']}/reverse", json={"memo": "again"},
                     headers=headers(bank_key))
    assert (twice.status_code, twice.json()["code"]) == (409, "already_reversed")
    ok(api.post(f"{V1}/partners/{bank['id']}/redemptions", json={**spend, "reference": "pay-2", "points": 250},
                headers=headers(bank_key)), 201)
    # then the settlement for today: 2,000 issued (€20.00 owed by the bank), 250 redeemed (€2.00 owed to it)
    today = datetime.now(UTC).date().isoformat()
    report = ok(api.get(f"{V1}/partners/{bank['id']}/settlement", params={"from": today, "to": today},
                        headers=headers(bank_key)))
    assert (report["points_issued"], report["points_redeemed"], report["net_points"]) == (2000, 250, -1750)
    assert (report["partner_owes_minor"], report["operator_owes_minor"], report["net_minor"]) == (2000, 200, -1800)
    text = api.get(f"{V1}/partners/{bank['id']}/settlement", params={"from": today, "to": today, "format": "csv"},
                   headers=headers(op))
    assert text.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(text.text)))
    assert (row["partner_code"], row["net_minor"]) == ("bank", "-1800")
    # and the operations list shows all four, the bank's account equals the net
    listed = ok(api.get(f"{V1}/partners/{bank['id']}/operations", headers=headers(bank_key)))["items"]
    assert [o["operation"] for o in listed] == ["earn", "redeem", "redeem"]
    assert ok(api.get(f"{V1}/accounts/{bank['account_id']}", headers=headers(op)))["balance"] == -1750
    with allegiance.read() as uow:
        assert verify(uow.conn).ok


def test_partner_writes_replay_by_idempotency_key_and_bad_input_names_the_field(
        allegiance: Allegiance, program: ProgramFixture, api: TestClient) -> None:
    op = program.operator_key
    bank = register(api, op, "bank")
    org = f.organization(allegiance, program.id)
    body = {"reference": "r", "organization_id": org["id"], "points": 10}
    first = api.post(f"{V1}/partners/{bank['id']}/earnings", json=body, headers=headers(op, "same"))
    second = api.post(f"{V1}/partners/{bank['id']}/earnings", json=body, headers=headers(op, "same"))
    assert (first.status_code, second.status_code, second.headers.get("idempotency-hit")) == (201, 201, "true")
    assert first.json() == second.json()
    for bad, field in (({**body, "points": 0}, "points"), ({**body, "balance": 5}, "balance")):
        response = api.post(f"{V1}/partners/{bank['id']}/earnings", json=bad, headers=headers(op))
        assert response.status_code == 422
        assert field in response.json()["field"]
    dup = api.post(f"{V1}/partners", json={"code": "bank", "name": "Again"}, headers=headers(op))
    assert (dup.status_code, dup.json()["field"]) == (409, "code")
    unit = api.post(f"{V1}/partners", json={"code": "x", "name": "X", "unit": "NOPE"}, headers=headers(op))
    assert (unit.status_code, unit.json()["field"]) == (422, "unit")
    period = api.get(f"{V1}/partners/{bank['id']}/settlement", params={"from": "2026-02-01", "to": "2026-01-01"},
                     headers=headers(op))
    assert (period.status_code, period.json()["field"]) == (422, "to")


def test_operators_manage_partners(allegiance: Allegiance, program: ProgramFixture, api: TestClient) -> None:
    op = program.operator_key
    bank = register(api, op, "bank")
    changed = ok(api.patch(f"{V1}/partners/{bank['id']}", json={"issue_rate": {"minor": 3, "per_points": 2},
                                                                "accepts_points": False}, headers=headers(op)))
    assert (changed["issue_rate_minor"], changed["issue_rate_per_points"], changed["accepts_points"]) == (3, 2, False)
    assert [p["code"] for p in ok(api.get(f"{V1}/partners", headers=headers(op)))["items"]] == ["bank"]
    org = f.organization(allegiance, program.id)
    refused = api.post(f"{V1}/partners/{bank['id']}/redemptions",
                       json={"reference": "r", "organization_id": org["id"], "points": 1}, headers=headers(op))
    assert (refused.status_code, refused.json()["code"]) == (422, "partner_operation_not_allowed")
