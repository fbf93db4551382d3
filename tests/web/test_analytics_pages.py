"""The analytics pages on SQLite and PostgreSQL: the dashboard's cards carry the stored overview's
numbers and its charts are inline SVG; retention, value, risk and recommendations render theirs
with the organizations of the stored results; an organization's analytics page; "Run now" runs
the job behind its CSRF token; before any run every page explains how to start one. One browser
check: the dashboard fits a 375 px phone without scrolling sideways."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from allegiance.analytics.headline import headline
from allegiance.api.app import create_api
from allegiance.bootstrap import Allegiance
from allegiance.web.app import mount_web
from tests.analytics_demo import demo_app
from tests.conftest import BACKENDS
from tests.web.conftest import HTTPX_WARNING, PASSWORD, OperatorUser, TestClient, csrf_of, log_in

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")
PAGES = ("/analytics", "/analytics/retention", "/analytics/value", "/analytics/risk", "/analytics/recommendations")


@dataclass
class Site:
    app: Allegiance
    web: FastAPI
    client: TestClient
    program_id: int
    user: OperatorUser
    backend: str
    ran: Any  # the answer to the "Run now" form

    def latest(self, kind: str) -> dict[str, Any]:
        with self.app.read() as uow:
            return uow.analytics.latest(self.program_id, kind)

    def org(self, external_id: str) -> dict[str, Any]:
        with self.app.read() as uow:
            found = uow.program_store.organization_by_external_id(self.program_id, external_id)
        assert found is not None
        return found


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with demo_app(request, tmp_path_factory, request.param) as (app, program_id):
        email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
        with app.write() as uow:
            user = OperatorUser(uow.access.create_user(email, "Olga Operator", PASSWORD), email, "Olga Operator",
                                PASSWORD)
            uow.analytics.save_settings(program_id, {"churn_threshold": 0.1}, by="test")  # some organizations at risk
        web = create_api(app)
        mount_web(web, app)
        with TestClient(web) as client:
            log_in(client, user)
            token = csrf_of(client.get("/analytics").text)
            ran = client.post("/analytics/run", data={"csrf_token": token}, follow_redirects=False)
            yield Site(app, web, client, program_id, user, request.param, ran)


def pct(value: float) -> str:
    return f"{value * 100:,.1f} %"


def test_run_now_runs_the_job_and_needs_the_csrf_token(site: Site) -> None:
    assert site.ran.status_code == 303 and site.ran.headers["location"].startswith("/analytics?done=run")
    assert "The analytics job has run" in site.client.get(site.ran.headers["location"]).text
    before = site.latest("overview")["created_at"]
    refused = site.client.post("/analytics/run", data={"csrf_token": "forged"}, follow_redirects=False)
    assert refused.status_code == 403 and site.latest("overview")["created_at"] == before


def test_the_dashboard_shows_the_stored_vital_signs_and_their_charts(site: Site) -> None:
    html = site.client.get("/analytics").text
    stored = site.latest("overview")
    head = headline(stored["document"])
    assert f"Results of the run for {stored['as_of']}" in html
    assert f"{pct(head['nrr'])} / {pct(head['grr'])}" in html
    assert pct(head["repeat_rate"]) in html and pct(head["churn_rate"]) in html and pct(head["active_rate"]) in html
    assert f"{head['nps']:,.1f}" in html
    assert f"95 % interval {head['nps_ci_low']:,.1f} to {head['nps_ci_high']:,.1f}" in html
    assert f"{head['retention_gain_minor']:,.0f}" in html
    assert head["roi_status"].replace("_", " ") in html or pct(head["roi"]) in html
    assert html.count("<svg") >= 4 and 'aria-label="Orders and buyers per month"' in html
    assert 'action="/analytics/run"' in html and csrf_of(html)
    assert 'href="/analytics" aria-current="page">Analytics</a>' in html  # the main navigation entry


@pytest.mark.parametrize("path", PAGES)
def test_every_page_draws_its_charts_after_a_run(site: Site, path: str) -> None:
    response = site.client.get(path)
    assert response.status_code == 200
    assert "<svg" in response.text and "No analytics run yet" not in response.text
    assert re.search(r'<svg role="img" aria-label="[^"]+"', response.text)  # every chart has an accessible name


def test_retention_shows_the_cohort_heatmaps_and_revenue_retention(site: Site) -> None:
    html = site.client.get("/analytics/retention").text
    revenue = site.latest("overview")["document"]["revenue_retention"]
    cohorts = {r["cohort_month"][:7] for r in site.latest("cohorts")["document"]["rows"]}
    assert f"{len(cohorts)} cohorts" in html and html.count("<svg") == 2
    assert f"{revenue['starting_minor']:,.0f}" in html and f"{revenue['ending_minor']:,.0f}" in html


def test_value_lists_the_top_organizations_by_lifetime_value(site: Site) -> None:
    html = site.client.get("/analytics/value").text
    rows = site.latest("clv")["document"]["rows"]
    names = [site.org(r["org"])["name"] for r in rows[:3]]
    positions = [html.index(f">{name}</a>") for name in names]
    assert positions == sorted(positions)
    assert f"{rows[0]['clv']:,.0f}" in html and f"{rows[0]['historical_clv']:,.0f}" in html
    for segment in site.latest("rfm")["document"]["segments"]:
        assert segment["segment"].replace("_", " ") in html


def test_risk_lists_the_at_risk_organizations_with_reasons_and_the_evaluation(site: Site) -> None:
    html = site.client.get("/analytics/risk").text
    churn = site.latest("churn")["document"]
    at_risk = sorted((r for r in churn["rows"] if r["p_churn"] >= churn["threshold"]), key=lambda r: -r["p_churn"])
    assert at_risk and f"At risk: {len(at_risk)}" in html
    riskiest = at_risk[0]
    assert site.org(riskiest["org"])["name"] in html and f"{riskiest['p_churn']:.2f}" in html
    assert riskiest["reason_texts"][0] in html and riskiest["intervention"] in html
    assert f"{churn['evaluation']['model']['auc']:.2f}" in html
    assert f"{churn['evaluation']['baseline_logistic_regression']['auc']:.2f}" in html
    for profile in churn["profiles"]:
        assert profile["intervention"] in html


def test_recommendations_search_one_organization_and_evaluate(site: Site) -> None:
    rows = site.latest("recommendations")["document"]["rows"]
    target = rows[0]["org"]
    mine = [r for r in rows if r["org"] == target]
    html = site.client.get("/analytics/recommendations", params={"q": target}).text
    assert all(f"<code>{r['item']}</code>" in html for r in mine)
    other = next(r for r in rows if r["org"] != target and r["item"] not in {m["item"] for m in mine})
    assert f"<code>{other['item']}</code>" not in html
    assert site.org(target)["name"] in html
    assert "Hit at" not in html and "Evaluate now" in html
    evaluated = site.client.get("/analytics/recommendations", params={"org": target, "evaluate": "1"}).text
    assert "Hit at" in evaluated and "Most popular overall" in evaluated
    assert "No organization with recommendations matches" in site.client.get(
        "/analytics/recommendations", params={"q": "no-such-company-anywhere"}).text


def test_an_organization_page_links_to_its_analytics(site: Site) -> None:
    churn = site.latest("churn")["document"]
    row = max(churn["rows"], key=lambda r: r["p_churn"])
    org = site.org(row["org"])
    detail = site.client.get(f"/organizations/{org['id']}").text
    assert f'href="/analytics/organizations/{org["id"]}"' in detail
    html = site.client.get(f"/analytics/organizations/{org['id']}").text
    assert f"{row['p_churn']:.2f}" in html and all(t in html for t in row["reason_texts"])
    health = next(r for r in site.latest("health")["document"]["rows"] if r["org"] == row["org"])
    assert f"{health['engagement_contribution']:,.1f}" in html and "<svg" in html
    recommended = [r for r in site.latest("recommendations")["document"]["rows"] if r["org"] == row["org"]]
    assert all(r["item"] in html for r in recommended)
    assert site.client.get("/analytics/organizations/987654321").status_code == 404


def test_before_any_run_every_page_says_how_to_start_one(site: Site) -> None:
    with site.app.write() as uow:
        empty = uow.programs.create_program(f"e-{uuid.uuid4().hex[:8]}", "Empty program")
        org = uow.programs.create_organization(empty["id"], {"external_id": "E-1", "name": "Lonely Ltd",
                                                             "kind": "customer"})
    with TestClient(site.web) as client:
        log_in(client, site.user)
        token = csrf_of(client.get("/organizations").text)
        assert client.post("/program", data={"csrf_token": token, "program_id": empty["id"]},
                           follow_redirects=False).status_code == 303
        for path in (*PAGES, f"/analytics/organizations/{org['id']}"):
            html = client.get(path).text
            assert "No analytics run yet" in html, path
            assert f"allegiance analytics run {empty['slug']}" in html and "<svg" not in html, path


@pytest.mark.browser
def test_the_dashboard_fits_a_phone(site: Site, tmp_path: Path) -> None:
    from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _log_in, serve

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    if site.backend != "sqlite":
        pytest.skip("the layout does not depend on the database")
    from playwright.sync_api import expect, sync_playwright

    with serve(site.web) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 800}, locale="en-US")
            _log_in(page, base, site.user)
            page.goto(f"{base}/analytics")
            expect(page.get_by_role("heading", name="Vital signs")).to_be_visible()
            charts = page.locator("figure.chart svg")
            assert charts.count() >= 4
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] <= 375
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"the dashboard scrolls sideways: {width}px"
            page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)
        finally:
            browser.close()
