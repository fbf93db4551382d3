"""The catalog pages: the list, adding an item, changing it — errors next to their fields."""

from __future__ import annotations

import re
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, csrf_of
from tests.web.routes.rewards_helpers import item

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")

VALID = {"code": "drill-kit", "names": "en: Cordless drill kit\nde: Akku-Bohrschrauber", "description": "18 V",
         "category": "goods", "unit": "PTS", "cost": "12,500", "stock": "40", "tiers": "gold, platinum",
         "roles": "", "organization_kinds": "dealer", "countries": "DE, AT", "image_url": "",
         "face_value_currency": "", "face_value_amount": "", "active": "on"}


def _error(html: str, field: str) -> str:
    match = re.search(rf'id="e-{field}">([^<]+)<', html)
    assert match, f"no error shown next to {field}"
    return match.group(1)


def test_adding_an_item_saves_it_and_lists_it(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    token = csrf_of(logged_in.get("/catalog/new").text)
    response = logged_in.post("/catalog", data={**VALID, "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    with allegiance.read() as uow:
        saved = uow.reward_store.item_by_code(program.id, "drill-kit")
    assert saved is not None
    assert saved["names"] == {"en": "Cordless drill kit", "de": "Akku-Bohrschrauber"}
    assert (saved["cost"], saved["stock"], saved["active"]) == (12_500, 40, True)
    assert saved["availability"] == {"tiers": ["gold", "platinum"], "roles": [], "organization_kinds": ["dealer"],
                                     "countries": ["DE", "AT"]}
    assert response.headers["location"] == f"/catalog/{saved['id']}?saved=1"
    listed = logged_in.get("/catalog").text
    assert "Cordless drill kit" in listed and "12,500 PTS" in listed and "gold, platinum, dealer, DE, AT" in listed


def test_bad_fields_come_back_with_their_messages_and_nothing_is_saved(
        logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    token = csrf_of(logged_in.get("/catalog/new").text)
    bad = {**VALID, "code": "Drill Kit!", "cost": "twelve", "countries": "Germany", "csrf_token": token}
    response = logged_in.post("/catalog", data=bad)
    assert response.status_code == 422
    assert "use lower-case letters" in _error(response.text, "code")
    assert "whole number" in _error(response.text, "cost")
    assert "pattern" in _error(response.text, "countries")
    assert 'value="Drill Kit!"' in response.text and "Akku-Bohrschrauber" in response.text  # the form comes back filled
    charity = logged_in.post("/catalog", data={**VALID, "category": "charity", "csrf_token": token})
    assert charity.status_code == 422 and "face_value" in _error(charity.text, "face_value")
    with allegiance.read() as uow:
        assert uow.reward_store.items(program.id) == []


def test_a_duplicate_code_is_refused_next_to_the_code(logged_in: Any, allegiance: Allegiance,
                                                      program: ProgramFixture) -> None:
    token = csrf_of(logged_in.get("/catalog/new").text)
    assert logged_in.post("/catalog", data={**VALID, "csrf_token": token}, follow_redirects=False).status_code == 303
    again = logged_in.post("/catalog", data={**VALID, "csrf_token": token})
    assert again.status_code == 422 and "exists" in _error(again.text, "code")


def test_editing_changes_the_item(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    existing = item(allegiance, program.id, 900, name="Old name", category="goods", stock=3)
    page = logged_in.get(f"/catalog/{existing['id']}")
    assert page.status_code == 200 and "en: Old name" in page.text and 'value="3"' in page.text
    form = {**VALID, "names": "en: New name", "cost": "1000", "stock": "", "active": "",
            "csrf_token": csrf_of(page.text)}
    response = logged_in.post(f"/catalog/{existing['id']}", data=form)
    assert response.status_code == 200 and "Saved." in response.text
    with allegiance.read() as uow:
        changed = uow.reward_store.item(program.id, existing["id"])
    assert changed is not None
    assert (changed["names"], changed["cost"], changed["stock"], changed["active"]) == ({"en": "New name"}, 1000,
                                                                                       None, False)
    assert changed["code"] == existing["code"]  # the code never changes
    bad = logged_in.post(f"/catalog/{existing['id']}", data={**form, "cost": "0"})
    assert bad.status_code == 422 and "greater than 0" in _error(bad.text, "cost")


def test_items_of_other_programs_are_404(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        other = int(uow.programs.create_program("other-catalog", "Other")["id"])
    foreign = item(allegiance, other, 10)
    assert logged_in.get(f"/catalog/{foreign['id']}").status_code == 404
    token = csrf_of(logged_in.get("/catalog").text)
    assert logged_in.post(f"/catalog/{foreign['id']}", data={**VALID, "csrf_token": token}).status_code == 404
