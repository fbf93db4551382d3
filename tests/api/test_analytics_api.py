"""Analytics over HTTP on SQLite and PostgreSQL: a run through ``POST /analytics/runs`` stores
results whose every number (rows paged back together) equals the service's documents; history,
one organization's view, settings and segments, the live evaluations, the problems (404 with a
hint before a run, 422 naming the field) and operators only (403 for every other key).

The demo program is loaded and run once per module and backend; tests that need an empty program
make their own in the same database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from allegiance.access.model import KeyRole
from allegiance.analytics import report
from allegiance.analytics.headline import HEADLINE_FIELDS, headline
from allegiance.api.app import create_api
from allegiance.bootstrap import Allegiance
from allegiance.storage import queries
from tests.analytics_demo import demo_app
from tests.api.conftest import QUIET, TestClient
from tests.conftest import BACKENDS

pytestmark = [QUIET]
V1 = "/api/v1/analytics"
BIG = 5_000_000  # revenue_12m above which an organization is in the "big" segment below


@dataclass
class Loaded:
    app: Allegiance
    client: TestClient
    program_id: int
    keys: dict[str, str]  # role -> bearer secret
    run: Any  # the response of the run made through the API

    def headers(self, role: str = "operator", *, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", "Idempotency-Key": key or uuid.uuid4().hex}

    def get(self, path: str, role: str = "operator", **params: Any) -> Any:
        return self.client.get(f"{V1}{path}", params=params, headers=self.headers(role))

    def empty_program(self) -> str:
        """A new program without any order, and its operator key."""
        with self.app.write() as uow:
            created = uow.programs.create_program(f"e-{uuid.uuid4().hex[:8]}", "Empty")
            _, key = uow.access.create_key(created["id"], "operator", KeyRole.OPERATOR)
        return key


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    with demo_app(request, tmp_path_factory, request.param) as (app, program_id):
        with app.write() as uow:
            org = uow.program_store.organization_by_external_id(program_id, "CUS-000001")
            assert org is not None
            [person] = queries.participants(uow.conn, program_id, visible=None, organization_id=org["id"], limit=1)[:1]
            keys = {"operator": uow.access.create_key(program_id, "op", KeyRole.OPERATOR)[1],
                    "org_admin": uow.access.create_key(program_id, "admin", KeyRole.ORG_ADMIN,
                                                       organization_id=org["id"])[1],
                    "participant": uow.access.create_key(program_id, "p", KeyRole.PARTICIPANT,
                                                         organization_id=org["id"], participant_id=person["id"])[1],
                    "integration": uow.access.create_key(program_id, "i", KeyRole.INTEGRATION)[1]}
        with TestClient(create_api(app)) as client:
            state = Loaded(app, client, program_id, keys, None)
            state.run = client.post(f"{V1}/runs", json={}, headers=state.headers(key="first-run"))
            yield state


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def all_rows(loaded: Loaded, kind: str, limit: int = 37) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The latest result with its rows read page by page (an odd page size, so pages end mid-list)."""
    first = ok(loaded.get(f"/{kind}", limit=limit))
    rows = list(first["document"].get("rows") or [])
    page = first["page"]
    while page and page["next_offset"] is not None:
        assert len(rows) == page["next_offset"]
        following = ok(loaded.get(f"/{kind}", limit=limit, offset=page["next_offset"]))
        assert following["as_of"] == first["as_of"]
        rows.extend(following["document"]["rows"])
        page = following["page"]
    return first, rows


def test_the_run_stores_every_result_and_a_retry_with_its_key_is_not_a_second_run(loaded: Loaded) -> None:
    summary = ok(loaded.run, 201)
    yesterday = loaded.app.clock.now().date() - timedelta(days=1)
    assert summary["as_of"] == yesterday.isoformat() and summary["engine"] == "duckdb"
    assert summary["stored"] == list(report.KINDS) and summary["skipped"] == {}
    assert set(summary["seconds"]) == set(report.KINDS) - {"facts"}
    again = loaded.client.post(f"{V1}/runs", json={}, headers=loaded.headers(key="first-run"))
    assert again.status_code == 201 and again.headers["Idempotency-Hit"] == "true" and again.json() == summary
    reused = loaded.client.post(f"{V1}/runs", json={"kinds": ["overview"]}, headers=loaded.headers(key="first-run"))
    assert problem(reused, 422)["code"] == "idempotency_key_reused"
    no_key = loaded.client.post(f"{V1}/runs", json={}, headers={"Authorization": f"Bearer {loaded.keys['operator']}"})
    assert problem(no_key, 422)["field"] == "Idempotency-Key"


@pytest.mark.parametrize(("body", "field"), [
    ({"kinds": ["overview", "nonsense"]}, "kinds[1]"),
    ({"kinds": []}, "kinds"),
    ({"engine": "excel"}, "engine"),
    ({"as_of": (date.today() + timedelta(days=30)).isoformat()}, "as_of"),
    ({"as_of": "1900-01-01"}, "as_of"),
    ({"as_of": "2025-01-01", "extra": 1}, "extra"),
])
def test_a_bad_run_request_names_the_field_and_runs_nothing(loaded: Loaded, body: dict[str, Any],
                                                           field: str) -> None:
    with loaded.app.read() as uow:
        before = uow.analytics.latest(loaded.program_id, "overview")["created_at"]
    assert problem(loaded.client.post(f"{V1}/runs", json=body, headers=loaded.headers()), 422)["field"] == field
    with loaded.app.read() as uow:
        assert uow.analytics.latest(loaded.program_id, "overview")["created_at"] == before


@pytest.mark.parametrize("kind", report.KINDS)
def test_each_result_equals_the_service_document_rows_paged_back_together(loaded: Loaded, kind: str) -> None:
    first, rows = all_rows(loaded, kind)
    with loaded.app.read() as uow:
        stored = uow.analytics.latest(loaded.program_id, kind)
    assert first["kind"] == kind and first["as_of"] == stored["as_of"].isoformat() == loaded.run.json()["as_of"]
    expected = stored["document"]
    got = {**first["document"], **({"rows": rows} if "rows" in expected else {})}
    assert got == expected
    if "rows" in expected:
        assert first["page"]["total"] == len(expected["rows"]) == len(rows) > 0
        assert len(first["document"]["rows"]) == min(37, len(rows))
    else:
        assert first["page"] is None


def test_paging_limits_and_unknown_kinds(loaded: Loaded) -> None:
    assert problem(loaded.get("/recommendations", limit=201), 422)["field"] == "limit"
    assert problem(loaded.get("/recommendations", offset=-1), 422)["field"] == "offset"
    past = ok(loaded.get("/cohorts", offset=100_000))
    assert past["document"]["rows"] == [] and past["page"]["next_offset"] is None
    unknown = problem(loaded.get("/nonsense"), 404)
    assert unknown["field"] == "kind" and "overview" in unknown["detail"]
    assert problem(loaded.get("/nonsense/history"), 404)["field"] == "kind"


def test_history_gives_the_overview_headlines_and_the_others_without_rows(loaded: Loaded) -> None:
    overview = ok(loaded.get("/overview/history"))["items"]
    with loaded.app.read() as uow:
        stored = uow.analytics.history(loaded.program_id, "overview")
        churn = uow.analytics.latest(loaded.program_id, "churn")["document"]
    assert [i["as_of"] for i in overview] == [s["as_of"].isoformat() for s in stored]
    latest = overview[-1]
    assert set(latest) == {"as_of", "created_at", *HEADLINE_FIELDS}
    assert {k: latest[k] for k in HEADLINE_FIELDS} == headline(stored[-1]["document"])
    assert latest["nrr"] == stored[-1]["document"]["revenue_retention"]["nrr"]
    assert latest["nps"] == stored[-1]["document"]["nps"]["score"]
    [item] = ok(loaded.get("/churn/history", limit=1))["items"]
    assert "rows" not in item["document"] and item["document"]["rows_total"] == len(churn["rows"])
    assert item["document"]["at_risk"] == churn["at_risk"]
    assert problem(loaded.get("/overview/history", limit=0), 422)["field"] == "limit"


def test_one_organization_has_the_service_view_and_a_stranger_is_404(loaded: Loaded) -> None:
    got = ok(loaded.get("/organizations/CUS-000001"))
    with loaded.app.read() as uow:
        expected = uow.analytics.organization(loaded.program_id, "CUS-000001")
        org = uow.program_store.organization_by_external_id(loaded.program_id, "CUS-000001")
    assert org is not None
    assert got["organization_id"] == org["id"] and got["name"] == org["name"]
    assert {k: v for k, v in got.items() if k not in ("organization_id", "name", "as_of")} == \
        {k: v for k, v in expected.items() if k != "as_of"}
    assert got["as_of"] == expected["as_of"].isoformat()
    assert got["churn"]["reason_texts"] and got["health"]["health_score"] == got["facts"]["health_score"]
    assert got["recommendations"] and all(r["org"] == "CUS-000001" for r in got["recommendations"])
    assert problem(loaded.get("/organizations/NOBODY-1"), 404)["field"] == "external_id"


def test_segments_saved_then_members_follow_the_latest_facts(loaded: Loaded) -> None:
    document = {"segments": [{"code": "big", "name": "Big spenders",
                              "conditions": [{"field": "revenue_12m", "op": "gt", "value": BIG}]}]}
    saved = ok(loaded.client.put(f"{V1}/segments", json=document, headers=loaded.headers()))
    assert saved["version"] >= 1 and [s["code"] for s in saved["segments"]] == ["big"]
    assert ok(loaded.get("/segments"))["version"] == saved["version"]
    with loaded.app.read() as uow:
        facts = uow.analytics.latest(loaded.program_id, "facts")["document"]["rows"]
    expected = sorted(r["org"] for r in facts if (r["revenue_12m"] or 0) > BIG)
    assert 0 < saved["members"]["big"] == len(expected) < len(facts)
    members: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = ok(loaded.get("/segments/big/members", limit=7, offset=offset))
        members.extend(o["org"] for o in page["organizations"])
        offset = page["page"]["next_offset"]
    assert members == expected
    assert problem(loaded.get("/segments/nothing-here/members"), 404)["code"] == "not_found"


@pytest.mark.parametrize(("document", "field"), [
    ({"segments": [{"code": "Bad Code", "name": "x"}]}, "segments[0].code"),
    ({"segments": [{"code": "a", "name": "x", "conditions": [{"field": "height", "op": "gt", "value": 1}]}]},
     "segments[0].conditions[0].field"),
    ({"segments": [{"code": "a", "name": "x", "conditions": [{"field": "tier", "op": "gt", "value": 1}]}]},
     "segments[0].conditions[0]"),
    ({"segments": [], "other": 1}, "other"),
])
def test_a_bad_segment_names_the_field(loaded: Loaded, document: dict[str, Any], field: str) -> None:
    found = problem(loaded.client.put(f"{V1}/segments", json=document, headers=loaded.headers()), 422)
    assert found["field"] == field


def test_settings_are_versioned_and_a_bad_value_names_the_field(loaded: Loaded) -> None:
    key = loaded.empty_program()
    auth = {"Authorization": f"Bearer {key}"}
    first = ok(loaded.client.get(f"{V1}/settings", headers=auth))
    assert first["version"] == 0 and first["settings"]["margin"] == 0.3
    for body, field in (({"margin": 1.5}, "margin"), ({"churn_rule": "sometimes"}, "churn_rule"),
                        ({"health": {"missing": 101}}, "health.missing"), ({"nonsense": 1}, "nonsense"),
                        ({"health": {"weights": {"luck": 1}}}, "health.weights.luck")):
        found = problem(loaded.client.put(f"{V1}/settings", json=body, headers=auth), 422)
        assert found["field"] == field, found
    saved = ok(loaded.client.put(f"{V1}/settings", json={"margin": 0.25, "recommend_k": 3}, headers=auth))
    assert saved["version"] == 1 and saved["settings"]["margin"] == 0.25
    assert saved["settings"]["recommend_k"] == 3 and saved["settings"]["churn_horizon_days"] == 90  # the default
    assert ok(loaded.client.get(f"{V1}/settings", headers=auth)) == saved


def test_nothing_is_there_before_a_run(loaded: Loaded) -> None:
    auth = {"Authorization": f"Bearer {loaded.empty_program()}"}
    for kind in report.KINDS:
        missing = problem(loaded.client.get(f"{V1}/{kind}", headers=auth), 404)
        assert missing["field"] == "kind" and "runs" in missing["hint"], missing
        assert ok(loaded.client.get(f"{V1}/{kind}/history", headers=auth))["items"] == []
    assert problem(loaded.client.post(f"{V1}/churn/evaluate", json={}, headers=auth), 409)["code"] == "not_enough_data"
    found = ok(loaded.client.get(f"{V1}/segments", headers=auth))
    assert found == {"version": 0, "segments": []}


def test_evaluations_are_the_service_documents_with_the_overrides(loaded: Loaded) -> None:
    churn = ok(loaded.client.post(f"{V1}/churn/evaluate", json={"churn_horizon_days": 60}, headers=loaded.headers()))
    recs = ok(loaded.client.post(f"{V1}/recommendations/evaluate", json={"recommend_level": "category",
                                                                         "recommend_k": 3}, headers=loaded.headers()))
    with loaded.app.read() as uow:
        assert churn == uow.analytics.evaluate_churn(loaded.program_id, None, {"churn_horizon_days": 60})
        assert recs == uow.analytics.evaluate_recommendations(loaded.program_id, None,
                                                              {"recommend_level": "category", "recommend_k": 3})
    assert churn["horizon_days"] == 60 and 0 <= churn["model"]["auc"] <= 1
    assert recs["level"] == "category" and recs["k"] == 3 and set(recs["methods"]) >= {"model", "global_popularity"}
    for path, body, field in (("/churn/evaluate", {"churn_horizon_days": 5}, "churn_horizon_days"),
                              ("/recommendations/evaluate", {"recommend_k": 0}, "recommend_k"),
                              ("/recommendations/evaluate", {"as_of": "3000-01-01"}, "as_of"),
                              ("/churn/evaluate", {"kinds": []}, "kinds"),
                              ("/churn/evaluate", {"horizon": 60}, "horizon")):
        found = problem(loaded.client.post(f"{V1}{path}", json=body, headers=loaded.headers()), 422)
        assert found["field"] == field, found


@pytest.mark.parametrize("role", ["org_admin", "participant", "integration"])
def test_only_operators_reach_analytics(loaded: Loaded, role: str) -> None:
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/overview", None), ("GET", "/overview/history", None), ("GET", "/organizations/CUS-000001", None),
        ("GET", "/settings", None), ("PUT", "/settings", {"margin": 0.5}), ("GET", "/segments", None),
        ("PUT", "/segments", {"segments": []}), ("GET", "/segments/big/members", None), ("POST", "/runs", {}),
        ("POST", "/churn/evaluate", {}), ("POST", "/recommendations/evaluate", {})]
    for method, path, body in calls:
        response = loaded.client.request(method, f"{V1}{path}", json=body, headers=loaded.headers(role))
        assert problem(response, 403)["code"] == "forbidden", (method, path)
    with loaded.app.read() as uow:
        assert uow.analytics.settings_document(loaded.program_id)["settings"]["margin"] != 0.5
