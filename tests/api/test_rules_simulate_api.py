"""``POST /api/v1/rules/simulate``: an operator backtests a draft (or a saved version) over stored
events; the answer is the report, nothing is written, a bad draft names its field."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from allegiance.bootstrap import Allegiance
from tests.api.test_rules_api import GOAL, event, headers, ok, org_and_person, setup_program
from tests.conftest import ProgramFixture

DRAFT = {
    "rules": [{"code": "cashback", "name": "2 % back", "trigger": "order.placed", "goal": GOAL,
               "action": {"kind": "percent", "percent": "2", "of": "payload.amount_minor", "unit": "USD"}},
              {"code": "idle", "name": "Never", "trigger": "order.placed", "goal": GOAL,
               "conditions": [{"field": "payload.channel", "op": "eq", "value": "fax"}],
               "action": {"kind": "fixed", "amount": 5}}],
    "caps": [{"code": "monthly", "scope": "participant", "period": "month", "unit": "USD", "max_amount": 5_000}],
}
PERIOD = {"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}


def history(api: TestClient, key: str) -> tuple[int, int]:
    setup_program(api, key, {"units": [{"code": "PTS", "name": "Points"},
                                       {"code": "USD", "name": "Dollars", "scale": 2, "kind": "store_credit"}],
                             "award_split": {"mode": "participant"}}, ["order.placed"])
    org, person = org_and_person(api, key)
    for amount in (100_000, 200_000, 50_000):
        event(api, key, "order.placed", {"amount_minor": amount}, org, person)
    event(api, key, "order.placed", {"amount_minor": 900_000}, org, person, at="2026-07-01T10:00:00Z")  # outside
    return org, person


def test_operator_backtests_a_draft_and_nothing_is_written(api: TestClient, allegiance: Allegiance,
                                                            program: ProgramFixture) -> None:
    key = program.operator_key
    org, person = history(api, key)
    versions_before = ok(api.get("/api/v1/rules/versions", headers=headers(key)))["items"]
    report: dict[str, Any] = ok(api.post("/api/v1/rules/simulate", json={"document": DRAFT, **PERIOD},
                                         headers=headers(key)))
    assert report["events_read"] == 3
    assert report["issued"] == {"USD": 5_000}  # 2 % of 3,500 = 7,000, capped at 5,000 a month
    assert report["capped"] == {"USD": 2_000} and report["caps_hit"] == {"monthly": 2}
    assert report["liability"] == {"USD": 5_000}
    assert report["organizations_affected"] == 1 and report["participants_affected"] == 1
    assert report["top_participants"]["USD"] == [{"participant_id": person, "amount": 5_000}]
    assert report["top_organizations"]["USD"] == [{"organization_id": org, "amount": 5_000}]
    assert report["never_fired"] == ["idle"] and report["rule_set_version"] is None
    assert report["counters_seeded_from"] == "nothing"
    # nothing saved, nothing earned
    assert ok(api.get("/api/v1/rules/versions", headers=headers(key)))["items"] == versions_before
    statement = ok(api.get(f"/api/v1/organizations/{org}/statement", headers=headers(key)))
    assert statement["items"] == []

    saved = ok(api.post("/api/v1/rules/versions", json={"document": DRAFT}, headers=headers(key)), 201)
    by_version = ok(api.post("/api/v1/rules/simulate", json={"version": saved["version"], **PERIOD},
                             headers=headers(key)))
    assert by_version["rule_set_version"] == saved["version"] and by_version["issued"] == report["issued"]


def test_bad_requests_name_the_field(api: TestClient, program: ProgramFixture) -> None:
    key = program.operator_key
    history(api, key)
    bad = {**DRAFT, "rules": [{**DRAFT["rules"][0], "action": {"kind": "percent", "percent": "0"}}]}
    cases = [({"document": bad, **PERIOD}, 422, "rules[0].action.percent"),
             ({"document": DRAFT, "version": 1, **PERIOD}, 422, "document"),
             ({"version": 99, **PERIOD}, 404, "version"),
             ({"document": DRAFT, "from": PERIOD["to"], "to": PERIOD["from"]}, 422, "to"),
             ({"document": DRAFT, "from": "2026-05-01T00:00:00", "to": PERIOD["to"]}, 422, "from")]
    for body, status, field in cases:
        response = api.post("/api/v1/rules/simulate", json=body, headers=headers(key))
        assert response.status_code == status, (body, response.text)
        problem = response.json()
        assert field in str(problem), (field, problem)
