"""The organization pages: search and its fragment, one organization's page, 404s, query counts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from allegiance.bootstrap import Allegiance
from allegiance.programs.model import ProgramSettings, UnitConfig
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, csrf_of

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")


def _other_program(allegiance: Allegiance, name: str = "Euro rebates") -> int:
    settings = ProgramSettings(units=[UnitConfig(code="EUR", name="Euro", scale=2)], default_unit="EUR")
    with allegiance.write() as uow:
        return int(uow.programs.create_program(factories.ref("eu"), name, settings)["id"])


def test_search_finds_by_name_and_by_external_id(logged_in: Any, allegiance: Allegiance,
                                                 program: ProgramFixture) -> None:
    factories.organization(allegiance, program.id, name="Acme Tools GmbH", external_id="DE-1001")
    factories.organization(allegiance, program.id, name="한빛 전자 주식회사", external_id="KR-2002", kind="dealer")
    by_name = logged_in.get("/organizations", params={"q": "acme"}).text
    assert "Acme Tools GmbH" in by_name and "한빛 전자 주식회사" not in by_name
    by_external_id = logged_in.get("/organizations", params={"q": "kr-20"}).text
    assert "한빛 전자 주식회사" in by_external_id and "Acme Tools GmbH" not in by_external_id
    by_korean_name = logged_in.get("/organizations", params={"q": "한빛"}).text
    assert "KR-2002" in by_korean_name
    by_kind = logged_in.get("/organizations", params={"kind": "dealer"}).text
    assert "한빛 전자 주식회사" in by_kind and "Acme Tools GmbH" not in by_kind
    nothing = logged_in.get("/organizations", params={"q": "no such company"}).text
    assert "No organization matches this search." in nothing


def test_live_search_fragment_holds_only_rows(logged_in: Any, allegiance: Allegiance,
                                              program: ProgramFixture) -> None:
    factories.organization(allegiance, program.id, name="Acme Tools GmbH", external_id="DE-1001")
    factories.organization(allegiance, program.id, name="Bolt Supply", external_id="DE-1002")
    response = logged_in.get("/organizations", params={"q": "acme"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.text.strip()
    assert body.startswith("<tr") and body.endswith("</tr>")
    assert "<html" not in body and "<form" not in body and "<thead" not in body
    assert "Acme Tools GmbH" in body and "Bolt Supply" not in body
    assert "HX-Request" in response.headers["vary"]
    full = logged_in.get("/organizations", params={"q": "acme"}).text
    assert full.lstrip().lower().startswith("<!doctype html>") and 'id="organization-rows"' in full


def test_list_pages_with_a_next_cursor(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    names = [f"Paged company {i}" for i in range(3)]
    for name in names:
        factories.organization(allegiance, program.id, name=name)
    first = logged_in.get("/organizations", params={"q": "paged", "limit": 2}).text
    assert names[0] in first and names[1] in first and names[2] not in first
    next_url = re.search(r'href="([^"]+)" rel="next"', first)
    assert next_url, "no Next link on a full page"
    second = logged_in.get(next_url.group(1).replace("&amp;", "&")).text
    assert names[2] in second and names[0] not in second and 'rel="next"' not in second
    bad = logged_in.get("/organizations", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "cursor" in bad.text


def test_organization_page_shows_hierarchy_people_and_balances(logged_in: Any, allegiance: Allegiance,
                                                               program: ProgramFixture) -> None:
    group = factories.organization(allegiance, program.id, name="Nordic Group", kind="distributor")
    org = factories.organization(allegiance, program.id, name="Nordic Tools AB", parent_id=group["id"],
                                 country="SE")
    site = factories.organization(allegiance, program.id, name="Nordic Tools Malmö", parent_id=org["id"])
    admin = factories.participant(allegiance, program.id, org["id"], name="Astrid Admin", is_org_admin=True)
    factories.participant(allegiance, program.id, org["id"], name="Erik Engineer", role="engineer")
    pool = factories.pool_account(allegiance, program.id, org["id"])
    personal = factories.personal_account(allegiance, program.id, org["id"], admin["id"])
    factories.fund(allegiance, program.id, pool, 12_500)
    factories.fund(allegiance, program.id, personal, 300)
    with allegiance.write() as uow:
        uow.ledger.reserve(program.id, pool, 2_000, ttl=timedelta(hours=1), memo="catalog order")

    page = logged_in.get(f"/organizations/{org['id']}")
    assert page.status_code == 200
    html = page.text
    crumbs = html[html.index('class="breadcrumbs"'):html.index("</nav>", html.index('class="breadcrumbs"'))]
    assert f'href="/organizations/{group["id"]}">Nordic Group</a>' in crumbs
    assert 'aria-current="page">Nordic Tools AB' in crumbs
    assert f'href="/organizations/{site["id"]}">Nordic Tools Malmö</a>' in html
    assert "Astrid Admin" in html and "Erik Engineer" in html
    assert "Engineer / technician" in html  # the program's role label, not its code
    assert html.count('class="badge admin"') == 1
    assert "10,500 PTS" in html  # pool: 12,500 funded − 2,000 held
    assert "2,000 PTS" in html  # on hold in the pool's escrow
    assert "300 PTS" in html  # Astrid's personal balance
    assert f'href="/accounts/{pool}"' in html and f'href="/accounts/{personal}"' in html
    assert "test funding" in html and "catalog order" in html  # recent transactions with memos
    assert "+12,500 PTS" in html and "-2,000 PTS" in html


def test_amounts_follow_the_units_scale(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    euro = _other_program(allegiance)
    org = factories.organization(allegiance, euro, name="Scaled Ltd")
    with allegiance.read() as uow:
        pool = uow.ledger.holder_account(euro, "EUR", org["id"]).id
    with allegiance.write() as uow:
        uow.ledger.adjust(euro, pool, 123_456, memo="rebate")
    token = csrf_of(logged_in.get("/organizations").text)
    assert logged_in.post("/program", data={"program_id": euro, "csrf_token": token},
                          follow_redirects=False).status_code == 303
    html = logged_in.get(f"/organizations/{org['id']}").text
    assert "1,234.56 EUR" in html and "+1,234.56 EUR" in html


def test_more_history_pages_through_transactions(logged_in: Any, allegiance: Allegiance,
                                                 program: ProgramFixture) -> None:
    org = factories.organization(allegiance, program.id)
    pool = factories.pool_account(allegiance, program.id, org["id"])
    for i in range(12):
        with allegiance.write() as uow:
            uow.ledger.adjust(program.id, pool, 1 + i, memo=f"credit number {i:02d}")
    html = logged_in.get(f"/organizations/{org['id']}").text
    assert "credit number 11" in html and "credit number 01" not in html  # newest ten
    more = re.search(r'href="([^"]+)" rel="next">More history', html)
    assert more
    older = logged_in.get(more.group(1)).text
    assert "credit number 01" in older and "credit number 00" in older and "credit number 11" not in older


def test_other_programs_and_unknown_ids_are_404_pages(logged_in: Any, allegiance: Allegiance,
                                                      program: ProgramFixture) -> None:
    foreign_program = _other_program(allegiance)
    foreign = factories.organization(allegiance, foreign_program, name="Somebody Else Inc")
    response = logged_in.get(f"/organizations/{foreign['id']}")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"] and "Somebody Else" not in response.text
    assert logged_in.get(f"/organizations/{foreign['id']}/transactions").status_code == 404
    assert logged_in.get("/organizations/999999").status_code == 404
    assert logged_in.get("/organizations/not-a-number").status_code == 404


def test_program_switch_shows_the_other_programs_organizations(logged_in: Any, allegiance: Allegiance,
                                                               program: ProgramFixture) -> None:
    other = _other_program(allegiance, name="Second program")
    mine = factories.organization(allegiance, other, name="Only In Second")
    first = logged_in.get("/organizations").text
    assert 'id="program-select"' in first and "Second program" in first and "Only In Second" not in first
    ignored = logged_in.post("/program", data={"program_id": 999_999, "csrf_token": csrf_of(first)},
                             follow_redirects=False)
    assert ignored.status_code == 303 and "Only In Second" not in logged_in.get("/organizations").text
    logged_in.post("/program", data={"program_id": other, "csrf_token": csrf_of(first)})
    assert "Only In Second" in logged_in.get("/organizations").text
    assert logged_in.get(f"/organizations/{mine['id']}").status_code == 200


def test_no_program_yet_explains_what_to_do(logged_in: Any) -> None:
    response = logged_in.get("/organizations")
    assert response.status_code == 200 and "allegiance programs create" in response.text


def _statements(allegiance: Allegiance, client: Any, url: str) -> int:
    count = 0

    def count_one(*_args: Any) -> None:
        nonlocal count
        count += 1

    engine = allegiance.db.read_engine
    event.listen(engine, "before_cursor_execute", count_one)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count_one)
    return count


def test_list_runs_the_same_number_of_queries_for_5_or_50_organizations(
        logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    for i in range(5):
        factories.organization(allegiance, program.id, name=f"Counted {i:02d}")
    logged_in.get("/organizations")  # warm the pools
    few = _statements(allegiance, logged_in, "/organizations")
    for i in range(5, 50):
        factories.organization(allegiance, program.id, name=f"Counted {i:02d}")
    many_page = logged_in.get("/organizations").text
    assert many_page.count('href="/organizations/') == 50
    many = _statements(allegiance, logged_in, "/organizations")
    assert few == many
    assert few <= 8
