"""The tiers pages: ladders with what each tier needs and gives, holders per tier, and an
organization's tier with its history on its own page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")

ORDERS = {"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor"}
LADDER = {"code": "status", "name": "Partner status", "window": {"kind": "year"}, "grace_days": 30, "tiers": [
    {"code": "member", "name": "Member"},
    {"code": "silver", "name": "Silver", "requires": [{**ORDERS, "at_least": 1_000}],
     "benefits": [{"code": "desk", "kind": "priority_support", "name": "Priority support desk"}]},
    {"code": "gold", "name": "Gold", "earn_multiplier": "2", "discount_percent": "5",
     "requires": [{**ORDERS, "at_least": 5_000}]}]}


def setup(allegiance: Allegiance, program_id: int) -> None:
    with allegiance.write() as uow:
        uow.events.declare_type(program_id, "order.placed", {"type": "object"})
        uow.tiers.save_ladder(program_id, LADDER, by="test")


def order(allegiance: Allegiance, program_id: int, org: int, amount: int) -> None:
    with allegiance.write() as uow:
        uow.events.record(program_id, [IncomingEvent(source_id=uuid.uuid4().hex, type="order.placed",
                                                     occurred_at=datetime.now(UTC), organization_id=org,
                                                     payload={"amount_minor": amount})])


def test_ladder_shows_tiers_highest_first_with_holders(logged_in: Any, allegiance: Allegiance,
                                                       program: ProgramFixture) -> None:
    setup(allegiance, program.id)
    gold = factories.organization(allegiance, program.id, name="Golden Dealer")
    silver = factories.organization(allegiance, program.id, name="Silver Dealer")
    order(allegiance, program.id, gold["id"], 6_000)
    order(allegiance, program.id, silver["id"], 1_500)
    html = logged_in.get("/tiers").text
    assert "Partner status" in html and html.index(">Gold<") < html.index(">Silver<") < html.index(">Member<")
    assert "Σ payload.amount_minor of order.placed ≥ 5,000" in html and "× 2, 5 % discount" in html
    assert "Priority support desk" in html
    holders = dict(re.findall(r'href="/tiers/status/(\w+)">(\d+)</a>', html))
    assert holders["gold"] == "1" and holders["silver"] == "1"
    members = logged_in.get("/tiers/status/gold").text
    assert "Golden Dealer" in members and "Silver Dealer" not in members
    assert logged_in.get("/tiers/status/platinum").status_code == 404
    assert logged_in.get("/tiers/nothing/gold").status_code == 404


def test_organization_page_shows_its_tier_and_history(logged_in: Any, allegiance: Allegiance,
                                                      program: ProgramFixture) -> None:
    setup(allegiance, program.id)
    org = factories.organization(allegiance, program.id, name="Climbing Co")
    order(allegiance, program.id, org["id"], 1_200)
    order(allegiance, program.id, org["id"], 4_000)
    html = logged_in.get(f"/organizations/{org['id']}").text
    panel = html[html.index('id="tier-title"'):html.index('id="children-title"')]
    assert "<dd>Gold" in panel and "× 2" in panel
    assert panel.index("silver → gold") < panel.index("member → silver")  # newest first


def test_without_a_ladder_the_pages_say_so(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    assert "No tier ladder yet" in logged_in.get("/tiers").text
    org = factories.organization(allegiance, program.id)
    assert 'id="tier-title"' not in logged_in.get(f"/organizations/{org['id']}").text
