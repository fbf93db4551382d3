"""The rules pages: versions with who and when, a version as tables, activation behind a confirmation,
and the backtest report rendered as tables."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, csrf_of

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")

GOAL = {"behavior": "larger online orders", "metric": "average order value", "expected_uplift": "+5 %"}


def document(*, goal: bool = True) -> dict[str, Any]:
    online = {"code": "online-bonus", "name": "Online orders earn 2 %", "trigger": "order.placed",
              "conditions": [{"field": "payload.channel", "op": "eq", "value": "online"}],
              "action": {"kind": "percent", "percent": "2", "of": "payload.amount_minor"}, "caps": ["monthly"]}
    if goal:
        online["goal"] = GOAL
    return {"rules": [online], "caps": [{"code": "monthly", "scope": "organization", "period": "month",
                                         "max_amount": 300}]}


def save(allegiance: Allegiance, program_id: int, doc: dict[str, Any], note: str) -> int:
    with allegiance.write() as uow:
        uow.events.declare_type(program_id, "order.placed", {"type": "object"})
    with allegiance.write() as uow:
        return int(uow.rules.save(program_id, doc, by="user:test", note=note)["version"])


def orders(allegiance: Allegiance, program_id: int, organization_id: int, amounts: list[int]) -> None:
    with allegiance.write() as uow:
        for index, amount in enumerate(amounts):
            uow.events.record_one(program_id, IncomingEvent(
                source_id=factories.ref("o"), type="order.placed", organization_id=organization_id,
                occurred_at=datetime(2026, 3, 1 + index, 12, tzinfo=UTC),
                payload={"channel": "online", "amount_minor": amount}))


def test_versions_list_says_who_saved_and_what_is_in_force(logged_in: Any, allegiance: Allegiance,
                                                           program: ProgramFixture) -> None:
    first = save(allegiance, program.id, document(), "first try")
    with allegiance.write() as uow:
        uow.rules.activate(program.id, first, by="user:olga")
    save(allegiance, program.id, document(), "second try")
    html = logged_in.get("/rules").text
    assert f'href="/rules/versions/{first}">Version {first}</a> — first try' in html
    assert "Activated by user:olga" in html and "second try" in html and ">draft<" in html


def test_a_version_reads_as_tables(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    version = save(allegiance, program.id, document(), "online push")
    html = logged_in.get(f"/rules/versions/{version}").text
    assert "Online orders earn 2 %" in html and "payload.channel = online" in html
    assert "2 % of payload.amount_minor in PTS" in html and "larger online orders" in html
    assert "organization per month" in html and "300 PTS" in html
    assert logged_in.get("/rules/versions/999").status_code == 404


def test_activation_asks_first_and_refuses_a_rule_without_a_goal(logged_in: Any, allegiance: Allegiance,
                                                                 program: ProgramFixture) -> None:
    aimless = save(allegiance, program.id, document(goal=False), "no goal")
    confirm = logged_in.get(f"/rules/versions/{aimless}/activate")
    assert confirm.status_code == 200 and "Put version" in confirm.text
    refused = logged_in.post(f"/rules/versions/{aimless}/activate", data={"csrf_token": csrf_of(confirm.text)})
    assert refused.status_code == 422 and "rules[0].goal" in refused.text and "has no goal" in refused.text

    good = save(allegiance, program.id, document(), "with goal")
    token = csrf_of(logged_in.get(f"/rules/versions/{good}/activate").text)
    assert logged_in.post(f"/rules/versions/{good}/activate", data={}).status_code == 403  # no CSRF token
    done = logged_in.post(f"/rules/versions/{good}/activate", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/rules/versions/{good}?done=activated"
    with allegiance.read() as uow:
        active = uow.rule_store.active(program.id)
        assert active is not None and active.version == good
        assert uow.rule_store.version(program.id, good)["activated_by"].startswith("user:")  # type: ignore[index]
    again = logged_in.post(f"/rules/versions/{good}/activate", data={"csrf_token": token})
    assert again.status_code == 409 and "already active" in again.text


def test_backtest_renders_the_report_as_tables(logged_in: Any, allegiance: Allegiance,
                                               program: ProgramFixture) -> None:
    org = factories.organization(allegiance, program.id, name="Backtest Buyer GmbH")
    version = save(allegiance, program.id, document(), "draft to test")
    orders(allegiance, program.id, org["id"], [10_000, 5_000, 2_000])  # 200 + 100 + 40, capped at 300 a month
    form = logged_in.get("/rules/backtest")
    assert form.status_code == 200 and f'<option value="{version}" selected>' in form.text
    html = logged_in.get("/rules/backtest", params={"version": version, "from": "2026-03-01", "to": "2026-03-31"}).text
    stats = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html))
    assert stats["Events read"] == "3" and stats["Organizations earning"] == "1"
    units = html[html.index('id="units-title"'):]
    cells = re.findall(r'data-label="(Issued|Cut by caps|Liability)" class="num">([^<]+)<', units)
    assert ("Issued", "300 PTS") in cells and ("Cut by caps", "40 PTS") in cells and ("Liability", "300 PTS") in cells
    assert "Backtest Buyer GmbH</a>: 300 PTS" in html and "monthly</code>: 1 times" in html
    with allegiance.read() as uow:
        assert uow.rule_store.active(program.id) is None  # nothing was activated or written


def test_backtest_with_a_bad_period_says_why(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    version = save(allegiance, program.id, document(), "draft")
    backwards = logged_in.get("/rules/backtest", params={"version": version, "from": "2026-03-31", "to": "2026-03-01"})
    assert backwards.status_code == 422 and "to: must be after from" in backwards.text
    bad_date = logged_in.get("/rules/backtest", params={"version": version, "from": "March", "to": "2026-03-01"})
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.text
    assert logged_in.get("/rules/backtest", params={"version": 999, "from": "2026-03-01",
                                                    "to": "2026-03-02"}).status_code == 404
