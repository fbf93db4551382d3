"""Rewards through the API, as the reference programs use them: TechAccess (company and contact
balances, a refused hotel stay, a conference seat from the company pool for a colleague), approvals
(manager, operator, two approvers at once), the annual gift cap and its register, stock under
concurrency, Citizen's charity statement and the concierge flow."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance
from allegiance.storage import tables as t
from allegiance.storage.verify import verify
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@dataclass
class Company:
    """An organization with a signing contact, a colleague, an org admin key and a contact key."""

    id: int
    contact: int
    colleague: int
    admin_key: str
    contact_key: str
    colleague_key: str


@dataclass
class Shop:
    api: TestClient
    app: Allegiance
    op: str  # operator key
    program_id: int

    def post(self, path: str, body: Any = None, key: str | None = None, status: int = 201) -> Any:
        return ok(self.api.post(V1 + path, json=body, headers=headers(key or self.op)), status)

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        return ok(self.api.get(V1 + path, params=params, headers=headers(key or self.op)))

    def item(self, cost: int, category: str = "travel", **extra: Any) -> int:
        body = {"code": f"i-{uuid.uuid4().hex[:8]}", "names": {"en": "Item", "de": "Artikel"}, "category": category,
                "cost": cost, **extra}
        return int(self.post("/catalog", body)["id"])

    def company(self, **org: Any) -> Company:
        created = self.post("/organizations", {"external_id": uuid.uuid4().hex[:12], "name": "TechCo", **org})
        people = [self.post("/participants", {"organization_id": created["id"], "external_id": uuid.uuid4().hex[:12],
                                              "name": name, "role": "engineer"})["id"]
                  for name in ("Contact", "Colleague")]
        with self.app.write() as uow:
            _, admin = uow.access.create_key(self.program_id, "admin", KeyRole.ORG_ADMIN,
                                             organization_id=created["id"])
            _, contact = uow.access.create_key(self.program_id, "contact", KeyRole.PARTICIPANT,
                                               organization_id=created["id"], participant_id=people[0])
            _, colleague = uow.access.create_key(self.program_id, "colleague", KeyRole.PARTICIPANT,
                                                 organization_id=created["id"], participant_id=people[1])
        return Company(created["id"], people[0], people[1], admin, contact, colleague)

    def award(self, company: Company, amount: int, participant: int | None = None) -> None:
        self.post("/transactions/awards", {"organization_id": company.id, "participant_id": participant,
                                           "amount": amount})

    def balances(self, company: Company) -> tuple[int, int]:
        """(company pool, contact) available balances."""
        accounts = self.get("/accounts", organization_id=company.id, limit=100)["items"]
        pool = next(a["balance"] for a in accounts if a["kind"] == "pool")
        person = next(a["balance"] for a in accounts
                      if a["kind"] == "personal" and a["participant_id"] == company.contact)
        return pool, person

    def rules(self, document: dict[str, Any], *event_types: str) -> None:
        """Declare the event types, then save and activate an earning rule set (the recipe's)."""
        for name in event_types:
            ok(self.api.put(f"{V1}/event-types/{name}", json={"name": name}, headers=headers(self.op)))
        saved = self.post("/rules/versions", {"document": document, "note": "recipe"})
        self.post(f"/rules/versions/{saved['version']}/activate", status=200)

    def event(self, type_: str, payload: dict[str, Any], company: Company, participant: int | None) -> None:
        self.post("/events", {"source_id": uuid.uuid4().hex, "type": type_, "occurred_at": "2026-05-12T10:00:00Z",
                              "organization_id": company.id, "participant_id": participant, "payload": payload})

    def policy(self, **policy: Any) -> None:
        ok(self.api.put(V1 + "/approval-policy", json=policy, headers=headers(self.op)))


GOAL = {"behavior": "sign more contracts", "metric": "net revenue retention", "expected_uplift": "+5 %"}
TECHACCESS = {"rules": [
    {"code": "contract-bonus", "name": "3 % of contract value", "trigger": "contract.signed",
     "action": {"kind": "percent", "percent": "3", "of": "payload.value"},
     "split": {"mode": "shared", "participant_percent": 30}, "key": "payload.contract_id", "goal": GOAL}]}
CITIZEN = {"rules": [
    {"code": "club-points", "name": "1 point per EUR 10 of purchases", "trigger": "order.placed",
     "action": {"kind": "percent", "percent": "0.1", "of": "payload.amount_minor"}, "goal": GOAL}]}


@pytest.fixture
def shop(api: TestClient, allegiance: Allegiance, program: ProgramFixture) -> Shop:
    return Shop(api, allegiance, program.operator_key, program.id)


def test_techaccess_company_and_contact_redeem_from_their_own_balances(shop: Shop) -> None:
    # given 3 % of contract value as bonus, split 70 % to the company and 30 % to its signing contact,
    # and a catalog with a hotel stay at 8,000 and a conference seat at 3,000
    shop.rules(TECHACCESS, "contract.signed")
    co = shop.company()
    # when the client signs a $200,000 contract, then the company gets 4,200 and the contact 1,800
    shop.event("contract.signed", {"contract_id": "C-1", "value": 200_000}, co, co.contact)
    assert shop.balances(co) == (4_200, 1_800)
    hotel = shop.item(8_000, "travel")
    seat = shop.item(3_000, "training_conferences")

    # when the contact asks for the hotel stay, then it is refused for lack of balance
    refused = shop.api.post(V1 + "/redemptions", json={"item_id": hotel}, headers=headers(co.contact_key))
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_funds"
    assert shop.balances(co) == (4_200, 1_800)

    # when the org admin redeems a conference seat from the company balance for a colleague
    seat_for_colleague = shop.post("/redemptions", {"item_id": seat, "source": "pool",
                                                    "recipient_participant_id": co.colleague,
                                                    "delivery": "Badge at the front desk"}, co.admin_key)
    # then the answer shows cost, balances before and after, and status
    assert (seat_for_colleague["cost"], seat_for_colleague["balance_before"], seat_for_colleague["balance_after"],
            seat_for_colleague["status"]) == (3_000, 4_200, 1_200, "approved")
    assert shop.balances(co) == (1_200, 1_800)

    # and once fulfilled it is delivered to that colleague, who sees it among their redemptions
    done = shop.post(f"/redemptions/{seat_for_colleague['id']}/fulfil", {"note": "seat booked"}, status=200)
    assert done["status"] == "fulfilled"
    assert done["recipient_participant_id"] == co.colleague
    colleague_view = shop.get("/redemptions", co.colleague_key)["items"]
    assert [r["id"] for r in colleague_view] == [seat_for_colleague["id"]]
    assert [h["to_status"] for h in done["history"]] == ["requested", "approved", "fulfilled"]
    with shop.app.read() as uow:
        topics = list(uow.conn.execute(select(t.outbox.c.topic).where(t.outbox.c.topic.like("redemption.%"))
                                       .order_by(t.outbox.c.id)).scalars())
        assert verify(uow.conn).ok  # the ledger still adds up
    assert topics[-3:] == ["redemption.requested", "redemption.approved", "redemption.fulfilled"]


def test_a_participant_may_not_spend_the_company_pool_unless_the_policy_says_so(shop: Shop) -> None:
    co = shop.company()
    shop.award(co, 1_000)
    item = shop.item(100, "goods")
    refused = shop.api.post(V1 + "/redemptions", json={"item_id": item, "source": "pool"},
                            headers=headers(co.contact_key))
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (403, "pool_not_allowed", "source")
    # the org admin opens the pool to engineers for their organization only
    ok(shop.api.put(f"{V1}/approval-policy/organizations/{co.id}", json={"pool_spenders": ["org_admin", "engineer"]},
                    headers=headers(co.admin_key)))
    assert shop.post("/redemptions", {"item_id": item, "source": "pool"}, co.contact_key)["status"] == "approved"
    other = shop.company()
    shop.award(other, 1_000)
    again = shop.api.post(V1 + "/redemptions", json={"item_id": item, "source": "pool"},
                          headers=headers(other.contact_key))
    assert again.status_code == 403


def test_an_org_admin_cannot_override_another_organizations_policy(shop: Shop) -> None:
    co, other = shop.company(), shop.company()
    response = shop.api.put(f"{V1}/approval-policy/organizations/{other.id}", json={"operator_approval": False},
                            headers=headers(co.admin_key))
    assert response.status_code == 404
    assert shop.get(f"/approval-policy/organizations/{other.id}")["override"] is None


def test_a_personal_redemption_above_the_threshold_waits_for_the_manager(shop: Shop) -> None:
    shop.policy(manager_approval_above={"PTS": 500})
    co = shop.company()
    shop.award(co, 10_000, participant=co.contact)  # 7,000 pool, 3,000 contact
    small, big = shop.item(500, "goods"), shop.item(501, "goods")
    assert shop.post("/redemptions", {"item_id": small}, co.contact_key)["status"] == "approved"
    waiting = shop.post("/redemptions", {"item_id": big}, co.contact_key)
    assert (waiting["status"], waiting["approvals_outstanding"]) == ("pending_approval", ["manager"])
    assert waiting["balance_after"] == 3_000 - 500 - 501  # the points are held while it waits
    # the contact cannot approve their own; the org admin can
    assert shop.api.post(f"{V1}/redemptions/{waiting['id']}/approve",
                         headers=headers(co.contact_key)).status_code == 403
    approved = shop.post(f"/redemptions/{waiting['id']}/approve", key=co.admin_key, status=200)
    assert approved["status"] == "approved"
    assert approved["approvals"][0]["step"] == "manager"


def test_operator_approval_after_the_manager_and_a_rejection_releases_everything(shop: Shop) -> None:
    shop.policy(operator_approval=True, approval_categories=["travel"])
    co = shop.company()
    shop.award(co, 10_000, participant=co.contact)
    trip = shop.item(1_000, "travel", stock=1)
    first = shop.post("/redemptions", {"item_id": trip}, co.contact_key)
    assert sorted(first["approvals_outstanding"]) == ["manager", "operator"]
    after_manager = shop.post(f"/redemptions/{first['id']}/approve", key=co.admin_key, status=200)
    assert (after_manager["status"], after_manager["approvals_outstanding"]) == ("pending_approval", ["operator"])
    # the manager has nothing left to approve
    again = shop.api.post(f"{V1}/redemptions/{first['id']}/approve", headers=headers(co.admin_key))
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    # the operator rejects with a reason: points, stock and the item come back
    assert shop.api.post(f"{V1}/redemptions/{first['id']}/reject", json={"reason": ""},
                         headers=headers(shop.op)).status_code == 422
    rejected = shop.post(f"/redemptions/{first['id']}/reject", {"reason": "over budget"}, status=200)
    assert (rejected["status"], rejected["reason"]) == ("rejected", "over budget")
    assert shop.balances(co)[1] == 3_000
    assert shop.get(f"/catalog/{trip}")["stock"] == 1
    assert shop.post("/redemptions", {"item_id": trip}, co.contact_key)["status"] == "pending_approval"


def test_two_approvers_at_once_one_wins_the_other_gets_409(shop: Shop) -> None:
    shop.policy(approval_categories=["travel"])
    co = shop.company()
    shop.award(co, 10_000, participant=co.contact)
    for _ in range(3):
        waiting = shop.post("/redemptions", {"item_id": shop.item(100, "travel")}, co.contact_key)
        barrier = threading.Barrier(2)

        def approve(key: str, rid: int = waiting["id"], gate: threading.Barrier = barrier) -> int:
            gate.wait()
            return shop.api.post(f"{V1}/redemptions/{rid}/approve", headers=headers(key)).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(approve, [co.admin_key, shop.op]))
        assert statuses == [200, 409]
        history = shop.get(f"/redemptions/{waiting['id']}")["history"]
        assert [h["to_status"] for h in history].count("approved") == 1


def test_cancelling_releases_the_hold_and_a_cancelled_redemption_cannot_be_fulfilled(shop: Shop) -> None:
    co = shop.company()
    shop.award(co, 1_000, participant=co.contact)
    made = shop.post("/redemptions", {"item_id": shop.item(200, "goods")}, co.contact_key)
    # a colleague cannot cancel someone else's redemption (it is not even visible to them)
    assert shop.api.post(f"{V1}/redemptions/{made['id']}/cancel", json={},
                         headers=headers(co.colleague_key)).status_code == 404
    cancelled = shop.post(f"/redemptions/{made['id']}/cancel", {"reason": "changed my mind"}, co.contact_key,
                          status=200)
    assert cancelled["status"] == "cancelled"
    assert shop.balances(co)[1] == 300
    late = shop.api.post(f"{V1}/redemptions/{made['id']}/fulfil", json={}, headers=headers(shop.op))
    assert (late.status_code, late.json()["code"]) == (409, "invalid_transition")
    with shop.app.read() as uow:
        hold = uow.ledger_store.get_hold(shop.program_id, made["hold_id"])
    assert hold is not None and hold.status == "voided"


def test_the_annual_cap_refuses_a_gift_that_would_pass_it_and_the_register_lists_it(shop: Shop) -> None:
    shop.policy(annual_cap={"PTS": 1_000})
    co = shop.company()
    shop.award(co, 10_000)
    item = shop.item(400, "hobby_leisure")
    for _ in range(2):
        shop.post("/redemptions", {"item_id": item, "source": "pool", "recipient_participant_id": co.colleague},
                  co.admin_key)
    refused = shop.api.post(V1 + "/redemptions", json={"item_id": item, "source": "pool",
                                                        "recipient_participant_id": co.colleague},
                            headers=headers(co.admin_key))
    body = refused.json()
    assert (refused.status_code, body["code"], body["field"]) == (409, "annual_cap_exceeded",
                                                                  "recipient_participant_id")
    assert (body["cap"], body["used"], body["requested"]) == (1_000, 800, 400)
    # another person still has their whole allowance
    shop.post("/redemptions", {"item_id": item, "source": "pool", "recipient_participant_id": co.contact},
              co.admin_key)
    year = shop.get(f"/redemptions/{refused_id(shop, co)}")["created_at"][:4]
    response = shop.api.get(V1 + "/gift-register", params={"year": year}, headers=headers(shop.op))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = {int(r["participant_id"]): r for r in csv.DictReader(io.StringIO(response.text))}
    assert (rows[co.colleague]["gifts"], rows[co.colleague]["committed"]) == ("2", "800")
    assert rows[co.contact]["committed"] == "400"


def refused_id(shop: Shop, co: Company) -> int:
    return int(shop.get("/redemptions", co.admin_key)["items"][0]["id"])


def test_concurrent_requests_never_oversell_a_limited_item(shop: Shop) -> None:
    co = shop.company()
    shop.award(co, 100_000)
    stock, workers, tries = 5, 4, 4
    item = shop.item(10, "goods", stock=stock)
    barrier = threading.Barrier(workers)

    def run(_: int) -> list[int]:
        barrier.wait()
        return [shop.api.post(V1 + "/redemptions", json={"item_id": item, "source": "pool"},
                              headers=headers(co.admin_key)).status_code for _ in range(tries)]

    with ThreadPoolExecutor(workers) as pool:
        statuses = [s for batch in pool.map(run, range(workers)) for s in batch]
    assert statuses.count(201) == stock
    assert set(statuses) == {201, 409}
    assert shop.get(f"/catalog/{item}")["stock"] == 0
    assert shop.balances(co)[0] == 100_000 - stock * 10


def test_citizen_charity_2000_points_record_a_100_euro_donation(shop: Shop) -> None:
    # given a charity catalog at 100 points = €5 donated
    # and a partner club earning 1 point per EUR 10 of purchases
    shop.rules(CITIZEN, "order.placed")
    cause = shop.item(100, "charity", face_value={"currency": "EUR", "amount": 500})
    co = shop.company()
    shop.event("order.placed", {"amount_minor": 5_000_000}, co, co.contact)  # EUR 50,000 → 5,000 points
    assert shop.balances(co) == (3_500, 1_500)  # the program's 70 / 30 split
    # when the partner gives 2,000 points from its pool
    gift = shop.post("/donations", {"cause_id": cause, "points": 2_000, "source": "pool"}, co.admin_key)
    # then a €100 donation and a receipt are recorded
    assert gift["status"] == "fulfilled"
    assert (gift["donation"]["points"], gift["donation"]["currency"], gift["donation"]["value"]) == (2_000, "EUR",
                                                                                                     10_000)
    assert gift["donation"]["receipt_number"].startswith("DON-")
    shop.post("/donations", {"cause_id": cause, "points": 300}, co.contact_key)
    statement = shop.get("/donations/statement", organization_id=co.id)["items"]
    assert [(s["cause_id"], s["points"], s["value"], s["donations"]) for s in statement] == [(cause, 2_300, 11_500, 2)]
    bad = shop.api.post(V1 + "/donations", json={"cause_id": cause, "points": 150}, headers=headers(co.contact_key))
    assert (bad.status_code, bad.json()["field"]) == (422, "points")
    # a donation is not a gift: it never counts against the annual cap
    assert shop.api.get(V1 + "/gift-register", params={"year": 2026}, headers=headers(shop.op)).text.count("\n") == 1


def test_concierge_request_quoted_accepted_becomes_a_held_redemption(shop: Shop) -> None:
    co = shop.company()
    shop.award(co, 10_000, participant=co.contact)  # contact has 3,000
    asked = shop.post("/concierge-requests", {"description": "Two tickets to the Monaco Grand Prix"},
                      co.contact_key)
    assert asked["status"] == "open"
    # the contact cannot quote; the operator (account manager) does
    assert shop.api.post(f"{V1}/concierge-requests/{asked['id']}/quote", json={"cost": 2_500},
                         headers=headers(co.contact_key)).status_code == 403
    quoted = shop.post(f"/concierge-requests/{asked['id']}/quote", {"cost": 2_500, "category": "hobby_leisure"},
                       status=200)
    assert (quoted["status"], quoted["quote_cost"], quoted["quote_unit"]) == ("quoted", 2_500, "PTS")
    accepted = shop.post(f"/concierge-requests/{asked['id']}/accept", key=co.contact_key, status=200)
    redemption = accepted["redemption"]
    assert (accepted["status"], redemption["status"], redemption["cost"], redemption["balance_after"]) == (
        "accepted", "approved", 2_500, 500)
    assert redemption["concierge_request_id"] == asked["id"]
    assert shop.get(f"/concierge-requests/{asked['id']}")["redemption_id"] == redemption["id"]
    # accepting twice is refused and holds nothing more
    twice = shop.api.post(f"{V1}/concierge-requests/{asked['id']}/accept", headers=headers(co.contact_key))
    assert twice.status_code == 409
    assert shop.balances(co)[1] == 500


def test_a_declined_quote_holds_nothing(shop: Shop) -> None:
    co = shop.company()
    shop.award(co, 1_000, participant=co.contact)
    asked = shop.post("/concierge-requests", {"description": "Storage for 500 t of cement"}, co.contact_key)
    shop.post(f"/concierge-requests/{asked['id']}/quote", {"cost": 200}, status=200)
    declined = shop.post(f"/concierge-requests/{asked['id']}/decline", {"reason": "too dear"}, co.contact_key,
                         status=200)
    assert declined["status"] == "declined"
    assert shop.balances(co)[1] == 300
    assert shop.api.post(f"{V1}/concierge-requests/{asked['id']}/accept",
                         headers=headers(co.contact_key)).status_code == 409


def test_participants_see_only_items_available_to_them(shop: Shop) -> None:
    co = shop.company(country="DE", kind="dealer", attributes={"tier": "gold"})
    other = shop.company(country="FR")
    everyone = shop.item(10, "goods")
    gold = shop.item(10, "goods", availability={"tiers": ["gold"]})
    german_dealers = shop.item(10, "goods", availability={"countries": ["DE"], "organization_kinds": ["dealer"]})
    sales_only = shop.item(10, "goods", availability={"roles": ["sales_rep"]})
    inactive = shop.item(10, "goods", active=False)

    def seen(key: str) -> set[int]:
        return {i["id"] for i in shop.get("/catalog", key, limit=200)["items"]}

    assert {everyone, gold, german_dealers, sales_only, inactive} <= seen(shop.op)
    assert seen(co.contact_key) >= {everyone, gold, german_dealers}
    assert not seen(co.contact_key) & {sales_only, inactive}
    assert seen(co.admin_key) >= {everyone, gold, german_dealers, sales_only}  # no person: roles not applied
    assert not seen(other.contact_key) & {gold, german_dealers, sales_only, inactive}
    assert shop.api.get(f"{V1}/catalog/{gold}", headers=headers(other.contact_key)).status_code == 404
    refused = shop.api.post(V1 + "/redemptions", json={"item_id": sales_only}, headers=headers(co.contact_key))
    assert (refused.status_code, refused.json()["code"]) == (422, "item_not_available")
    assert shop.get(f"/catalog/{everyone}", co.contact_key, locale="de-AT")["name"] == "Artikel"


def test_catalog_edits_are_validated(shop: Shop) -> None:
    item = shop.item(10, "goods", stock=3)
    dup = shop.api.post(V1 + "/catalog", json={"code": shop.get(f"/catalog/{item}")["code"], "names": {"en": "x"},
                                                "category": "goods", "cost": 1}, headers=headers(shop.op))
    assert (dup.status_code, dup.json()["code"]) == (409, "duplicate_item_code")
    for body, field in (({"cost": 0}, "cost"), ({"colour": "red"}, "colour"), ({"names": None}, "names"),
                        ({"category": "charity"}, "face_value")):
        response = shop.api.patch(f"{V1}/catalog/{item}", json=body, headers=headers(shop.op))
        assert (response.status_code, response.json()["field"]) == (422, field), response.text
    patched = ok(shop.api.patch(f"{V1}/catalog/{item}", json={"stock": None, "cost": 20}, headers=headers(shop.op)))
    assert (patched["stock"], patched["cost"]) == (None, 20)
    charity = shop.api.post(V1 + "/catalog", json={"code": "c1", "names": {"en": "x"}, "category": "charity",
                                                    "cost": 1}, headers=headers(shop.op))
    assert charity.status_code == 422
