"""Organization admins on the pages: sign-in, their approval queue, approve / reject — and nothing of
other organizations, nor of the operators' pages."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from allegiance.bootstrap import Allegiance
from allegiance.storage import tables as t
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, OperatorUser, TestClient, csrf_of, log_in
from tests.web.routes.rewards_helpers import Team, item, needs_manager_for_travel, org_admin_user, redeem, team

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")


@pytest.fixture
def two_teams(allegiance: Allegiance, program: ProgramFixture) -> tuple[Team, Team, int]:
    needs_manager_for_travel(allegiance, program.id)
    trip = item(allegiance, program.id, 1_500)
    return team(allegiance, program.id, "Acme"), team(allegiance, program.id, "Bolt"), int(trip["id"])


@pytest.fixture
def acme_admin(client: Any, allegiance: Allegiance, two_teams: tuple[Team, Team, int]) -> Any:
    log_in(client, org_admin_user(allegiance, two_teams[0].admin["id"]), next_url="/my/approvals")
    return client


def test_org_admin_sees_only_their_organizations_waiting_redemptions(
        acme_admin: Any, allegiance: Allegiance, program: ProgramFixture, two_teams: tuple[Team, Team, int]) -> None:
    acme, bolt, trip = two_teams
    site = factories.organization(allegiance, program.id, name="Acme Porto site", parent_id=acme.organization["id"])
    worker = factories.participant(allegiance, program.id, site["id"], name="Porto Worker")
    account = factories.personal_account(allegiance, program.id, site["id"], worker["id"])
    factories.fund(allegiance, program.id, account, 5_000)
    mine = redeem(allegiance, program.id, acme, trip)
    below = redeem(allegiance, program.id, Team(site, acme.admin, worker, account), trip)
    theirs = redeem(allegiance, program.id, bolt, trip)

    page = acme_admin.get("/my/approvals")
    assert page.status_code == 200
    assert f'href="/my/approvals/{mine["id"]}"' in page.text and f'href="/my/approvals/{below["id"]}"' in page.text
    assert f"/{theirs['id']}\"" not in page.text and "Bolt" not in page.text
    nav = page.text[page.text.index('aria-label="Main"'):page.text.index("</nav>")]
    assert "Approvals" in nav and "Organizations" not in nav and "Catalog" not in nav


def test_org_admin_approves_and_rejects_in_their_organization(
        acme_admin: Any, allegiance: Allegiance, program: ProgramFixture, two_teams: tuple[Team, Team, int]) -> None:
    acme, _, trip = two_teams
    first, second = redeem(allegiance, program.id, acme, trip), redeem(allegiance, program.id, acme, trip)
    token = csrf_of(acme_admin.get(f"/my/approvals/{first['id']}").text)
    approved = acme_admin.post(f"/my/approvals/{first['id']}/approve", data={"csrf_token": token})
    assert approved.status_code == 200 and "Approved." in approved.text
    rejected = acme_admin.post(f"/my/approvals/{second['id']}/reject",
                               data={"csrf_token": token, "reason": "Not during the audit"})
    assert rejected.status_code == 200 and "Not during the audit" in rejected.text
    with allegiance.read() as uow:
        done = uow.rewards.redemption(program.id, first["id"])
        assert done["status"] == "approved"
        assert done["approvals"][0]["step"] == "manager" and done["approvals"][0]["by"].startswith("user:")
        assert uow.rewards.redemption(program.id, second["id"])["status"] == "rejected"
    assert f"/my/approvals/{first['id']}\"" not in acme_admin.get("/my/approvals").text  # no longer waiting


def test_org_admin_cannot_see_or_act_on_another_organization(
        acme_admin: Any, allegiance: Allegiance, program: ProgramFixture, two_teams: tuple[Team, Team, int]) -> None:
    _, bolt, trip = two_teams
    theirs = redeem(allegiance, program.id, bolt, trip)
    missing = acme_admin.get("/my/approvals/999999")
    foreign = acme_admin.get(f"/my/approvals/{theirs['id']}")
    assert foreign.status_code == missing.status_code == 404
    assert "Bolt" not in foreign.text
    assert foreign.text.replace(f"redemption {theirs['id']} ", "redemption N ") == missing.text.replace(
        "redemption 999999 ", "redemption N ")
    token = csrf_of(acme_admin.get("/my/approvals").text)
    assert acme_admin.post(f"/my/approvals/{theirs['id']}/approve", data={"csrf_token": token}).status_code == 404
    assert acme_admin.post(f"/my/approvals/{theirs['id']}/reject",
                           data={"csrf_token": token, "reason": "no"}).status_code == 404
    with allegiance.read() as uow:
        assert uow.rewards.redemption(program.id, theirs["id"])["status"] == "pending_approval"


def test_org_admin_cannot_give_the_operators_approval(client: Any, allegiance: Allegiance,
                                                      program: ProgramFixture) -> None:
    needs_manager_for_travel(allegiance, program.id, operator_approval=True)
    acme = team(allegiance, program.id, "Acme")
    mug = redeem(allegiance, program.id, acme, item(allegiance, program.id, 100, category="goods")["id"])
    assert mug["approvals_outstanding"] == ["operator"]
    log_in(client, org_admin_user(allegiance, acme.admin["id"]))
    assert f"/my/approvals/{mug['id']}\"" not in client.get("/my/approvals").text
    page = client.get(f"/my/approvals/{mug['id']}")
    assert page.status_code == 200 and "/approve" not in page.text  # visible, but not theirs to decide
    refused = client.post(f"/my/approvals/{mug['id']}/reject", data={"csrf_token": csrf_of(page.text), "reason": "x"})
    assert refused.status_code == 409 and "does not wait for your approval" in refused.text
    with allegiance.read() as uow:
        assert uow.rewards.redemption(program.id, mug["id"])["status"] == "pending_approval"


def test_operator_pages_and_org_admin_pages_are_kept_apart(
        acme_admin: Any, web_app: Any, operator_user: OperatorUser, two_teams: tuple[Team, Team, int]) -> None:
    for path in ("/organizations", "/redemptions", "/catalog", "/rules", "/tiers", "/coop", "/"):
        response = acme_admin.get(path, follow_redirects=True)
        assert response.url.path == "/my/approvals", path
    with TestClient(web_app) as operator_client:
        log_in(operator_client, operator_user)
        response = operator_client.get("/my/approvals", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/redemptions"


def test_an_admin_who_loses_the_flag_is_logged_out(acme_admin: Any, allegiance: Allegiance,
                                                   two_teams: tuple[Team, Team, int]) -> None:
    assert acme_admin.get("/my/approvals").status_code == 200
    with allegiance.write() as uow:
        uow.conn.execute(update(t.participants).where(t.participants.c.id == two_teams[0].admin["id"])
                         .values(is_org_admin=False))
    response = acme_admin.get("/my/approvals", follow_redirects=False)
    assert response.status_code == 403 and "No longer an organization admin" in response.text
    assert acme_admin.get("/my/approvals", follow_redirects=False).status_code == 303  # the session is gone
