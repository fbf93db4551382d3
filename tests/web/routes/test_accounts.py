"""The account page: balance = available + held, and a paged posting history."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")


def _stats(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>(\w+)</dt><dd>([^<]+)</dd>", html))


def test_account_shows_balance_held_available_and_postings(logged_in: Any, allegiance: Allegiance,
                                                            program: ProgramFixture) -> None:
    org = factories.organization(allegiance, program.id, name="Holding Co")
    person = factories.participant(allegiance, program.id, org["id"], name="Hanna Holder")
    account = factories.personal_account(allegiance, program.id, org["id"], person["id"])
    factories.fund(allegiance, program.id, account, 5_000)
    with allegiance.write() as uow:
        uow.ledger.reserve(program.id, account, 1_200, ttl=timedelta(hours=2), memo="voucher order")

    page = logged_in.get(f"/accounts/{account}")
    assert page.status_code == 200
    assert _stats(page.text) == {"Balance": "5,000 PTS", "Held": "1,200 PTS", "Available": "3,800 PTS"}
    assert "Hanna Holder" in page.text and f'href="/organizations/{org["id"]}">Holding Co' in page.text
    rows = page.text[page.text.index('id="posting-rows"'):]
    assert rows.index("voucher order") < rows.index("test funding")  # newest first
    assert "-1,200 PTS" in rows and "+5,000 PTS" in rows
    assert ">hold</span>" in rows and ">adjust</span>" in rows


def test_postings_name_the_event_that_made_them(logged_in: Any, allegiance: Allegiance,
                                                program: ProgramFixture) -> None:
    org = factories.organization(allegiance, program.id)
    with allegiance.write() as uow:
        settings = uow.programs.settings(program.id)
        uow.events.declare_type(program.id, "order.placed", {"type": "object"})
        recorded = uow.events.record_one(program.id, IncomingEvent(
            source_id=factories.ref("order"), type="order.placed", occurred_at=datetime.now(UTC),
            organization_id=org["id"]))
        posted = uow.ledger.award(program.id, "PTS", 700, organization_id=org["id"], participant_id=None,
                                  split=settings.award_split, expiry=settings.expiry, memo="order 42",
                                  event_id=recorded.event_id)
    pool = factories.pool_account(allegiance, program.id, org["id"])
    html = logged_in.get(f"/accounts/{pool}").text
    row = html[html.index(f"#{posted.transaction_id}"):]
    row = row[:row.index("</tr>")]
    assert ">award</span>" in row and "order 42" in row and f"#{recorded.event_id}" in row and "+700 PTS" in row


def test_posting_history_pages_with_a_cursor(logged_in: Any, allegiance: Allegiance,
                                             program: ProgramFixture) -> None:
    org = factories.organization(allegiance, program.id)
    pool = factories.pool_account(allegiance, program.id, org["id"])
    for i in range(3):
        with allegiance.write() as uow:
            uow.ledger.adjust(program.id, pool, 10 + i, memo=f"posting {i}")
    first = logged_in.get(f"/accounts/{pool}", params={"limit": 2}).text
    assert "posting 2" in first and "posting 1" in first and "posting 0" not in first
    link = re.search(r'href="([^"]+)" rel="next"', first)
    assert link
    fragment = logged_in.get(link.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"}).text
    assert fragment.strip().startswith("<tr") and "posting 0" in fragment and "posting 2" not in fragment


def test_accounts_of_other_programs_are_404(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        other = uow.programs.create_program(factories.ref("o"), "Other")["id"]
    org = factories.organization(allegiance, other)
    foreign = factories.pool_account(allegiance, other, org["id"])
    assert logged_in.get(f"/accounts/{foreign}").status_code == 404
    assert logged_in.get("/accounts/0").status_code == 404
