"""The operators' redemption pages: the approval queue, one redemption, approve / reject / fulfil."""

from __future__ import annotations

import re
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, csrf_of
from tests.web.routes.rewards_helpers import item, needs_manager_for_travel, redeem, team

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")


def _balance(allegiance: Allegiance, program_id: int, account: int) -> int:
    with allegiance.read() as uow:
        found = uow.ledger_store.get_account(program_id, account)
    assert found is not None and found.balance is not None
    return found.balance


def test_the_queue_lists_waiting_redemptions_oldest_first(logged_in: Any, allegiance: Allegiance,
                                                          program: ProgramFixture) -> None:
    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 1_500, name="Weekend in Lisbon")
    mug = item(allegiance, program.id, 100, name="Branded mug", category="goods")
    acme = team(allegiance, program.id, "Acme")
    first = redeem(allegiance, program.id, acme, trip["id"])
    second = redeem(allegiance, program.id, acme, trip["id"])
    redeem(allegiance, program.id, acme, mug["id"])  # no approval needed: approved at once

    html = logged_in.get("/redemptions").text
    rows = html[html.index('id="redemption-rows"'):]
    assert rows.index(f">#{first['id']}<") < rows.index(f">#{second['id']}<")
    assert "Branded mug" not in rows and "Weekend in Lisbon" in rows and "1,500 PTS" in rows
    assert "Acme Member" in rows and "waits for manager" in rows
    assert re.search(r'Pending approval <span class="count">2</span>', html)
    approved = logged_in.get("/redemptions", params={"status": "approved"}).text
    assert "Branded mug" in approved and "Weekend in Lisbon" not in approved
    fragment = logged_in.get("/redemptions", headers={"HX-Request": "true"}).text.strip()
    assert fragment.startswith("<tr") and "<html" not in fragment


def test_operator_approves_then_fulfils_and_the_points_are_spent(logged_in: Any, allegiance: Allegiance,
                                                                 program: ProgramFixture) -> None:
    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 1_500)
    acme = team(allegiance, program.id, "Acme", funds=4_000)
    waiting = redeem(allegiance, program.id, acme, trip["id"], delivery="Front desk, Lisbon office")
    page = logged_in.get(f"/redemptions/{waiting['id']}")
    assert page.status_code == 200
    assert "Front desk, Lisbon office" in page.text and "4,000 PTS" in page.text and "2,500 PTS" in page.text
    token = csrf_of(page.text)

    approved = logged_in.post(f"/redemptions/{waiting['id']}/approve", data={"csrf_token": token},
                              follow_redirects=False)
    assert approved.status_code == 303 and approved.headers["location"] == f"/redemptions/{waiting['id']}?done=approved"
    again = logged_in.post(f"/redemptions/{waiting['id']}/approve", data={"csrf_token": token})
    assert again.status_code == 409 and "cannot be approved" in again.text  # the state machine refuses a repeat

    done = logged_in.post(f"/redemptions/{waiting['id']}/fulfil", data={"csrf_token": token, "note": "DHL 123"})
    assert done.status_code == 200 and "Marked as delivered" in done.text and "DHL 123" in done.text
    with allegiance.read() as uow:
        assert uow.rewards.redemption(program.id, waiting["id"])["status"] == "fulfilled"
    assert _balance(allegiance, program.id, acme.account) == 2_500


def test_reject_needs_a_reason_and_releases_the_points(logged_in: Any, allegiance: Allegiance,
                                                       program: ProgramFixture) -> None:
    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 1_500)
    acme = team(allegiance, program.id, "Acme", funds=4_000)
    waiting = redeem(allegiance, program.id, acme, trip["id"])
    token = csrf_of(logged_in.get(f"/redemptions/{waiting['id']}").text)

    blank = logged_in.post(f"/redemptions/{waiting['id']}/reject", data={"csrf_token": token, "reason": "  "})
    assert blank.status_code == 422
    assert 'id="reason-error">a rejection needs a reason' in blank.text and 'aria-invalid="true"' in blank.text
    assert _balance(allegiance, program.id, acme.account) == 2_500

    rejected = logged_in.post(f"/redemptions/{waiting['id']}/reject",
                              data={"csrf_token": token, "reason": "Over the travel budget"})
    assert rejected.status_code == 200 and "Over the travel budget" in rejected.text
    assert _balance(allegiance, program.id, acme.account) == 4_000


def test_moves_need_the_csrf_token(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    needs_manager_for_travel(allegiance, program.id)
    acme = team(allegiance, program.id, "Acme")
    waiting = redeem(allegiance, program.id, acme, item(allegiance, program.id, 10)["id"])
    response = logged_in.post(f"/redemptions/{waiting['id']}/approve", data={}, follow_redirects=False)
    assert response.status_code == 403
    with allegiance.read() as uow:
        assert uow.rewards.redemption(program.id, waiting["id"])["status"] == "pending_approval"


def test_redemptions_of_other_programs_are_404(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        other = int(uow.programs.create_program("other-redemptions", "Other")["id"])
    needs_manager_for_travel(allegiance, other)
    foreign = redeem(allegiance, other, team(allegiance, other, "Elsewhere"), item(allegiance, other, 10)["id"])
    assert logged_in.get(f"/redemptions/{foreign['id']}").status_code == 404
    token = csrf_of(logged_in.get("/redemptions").text)
    assert logged_in.post(f"/redemptions/{foreign['id']}/approve", data={"csrf_token": token}).status_code == 404
    with allegiance.read() as uow:
        assert uow.rewards.redemption(other, foreign["id"])["status"] == "pending_approval"


def test_the_queue_runs_the_same_number_of_queries_for_2_or_12_rows(logged_in: Any, allegiance: Allegiance,
                                                                     program: ProgramFixture) -> None:
    from tests.web.routes.test_organizations import _statements

    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 10)
    people = [team(allegiance, program.id, f"Team {i}") for i in range(12)]
    for who in people[:2]:
        redeem(allegiance, program.id, who, trip["id"])
    logged_in.get("/redemptions")
    few = _statements(allegiance, logged_in, "/redemptions")
    for who in people[2:]:
        redeem(allegiance, program.id, who, trip["id"])
    assert logged_in.get("/redemptions").text.count('href="/redemptions/') == 12
    assert _statements(allegiance, logged_in, "/redemptions") == few
