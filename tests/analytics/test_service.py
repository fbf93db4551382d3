"""The analytics job on a real database (SQLite and PostgreSQL): every result is stored as a
snapshot that reads back equal, a re-run replaces its day, segments are validated, written to the
organizations' attributes and usable by an earning rule, and a thin history says why a result is
missing instead of failing the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select

from allegiance.analytics import report
from allegiance.analytics.segments import SegmentSet, membership
from allegiance.bootstrap import Allegiance
from allegiance.demo.loader import load_demo
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import ProgramFixture
from tests.rules.test_pipeline import activate, record

SEGMENTS = {"segments": [
    {"code": "risky-buyers", "name": "At risk with a purchasing manager",
     "conditions": [{"field": "churn_risk", "op": "gte", "value": 0.1},
                    {"field": "roles", "op": "contains", "value": "purchasing_manager"}]},
    {"code": "big", "name": "Big spenders", "conditions": [{"field": "revenue_12m", "op": "gt", "value": 1_000_000}]},
]}


def test_a_run_stores_every_result_and_segments_reach_the_organizations(allegiance: Allegiance) -> None:
    summary = load_demo(allegiance, seed=3, organizations=60, months=24)
    program_id = summary.program_id
    with allegiance.write() as uow:
        saved = uow.analytics.save_segments(program_id, SEGMENTS, by="test")
    assert saved["version"] == 1 and saved["members"] is None  # nothing to match against before a run

    with allegiance.write() as uow:
        result = uow.analytics.run(program_id)
    assert result.skipped == {}
    assert set(result.documents) == {*report.KINDS, "segments"}

    with allegiance.read() as uow:
        for kind in report.KINDS:
            stored = uow.analytics.latest(program_id, kind)
            assert str(stored["as_of"]) == result.as_of.isoformat()
            assert {k: v for k, v in stored["document"].items() if k != "settings_version"} == result.documents[kind]
        churn = uow.analytics.latest(program_id, "churn")["document"]
        facts = pl.DataFrame(uow.analytics.latest(program_id, "facts")["document"]["rows"])

    # churn: every scored organization has reasons; the at-risk count and the profiles agree with the rows
    threshold = churn["threshold"]
    at_risk = {r["org"] for r in churn["rows"] if r["p_churn"] >= threshold}
    assert churn["at_risk"] == len(at_risk)
    assert all(r["reasons"] for r in churn["rows"])
    assert {o for p in churn["profiles"] for o in p["orgs"]} == at_risk
    assert sum(p["organizations"] for p in churn["profiles"]) == len(at_risk)
    evaluation = churn["evaluation"]
    assert 0 <= evaluation["model"]["auc"] <= 1 and "auc" in evaluation["baseline_logistic_regression"]

    # facts carry the model outputs of the same run, and membership follows the segment definitions
    p_churn = {r["org"]: r["p_churn"] for r in churn["rows"]}
    for row in facts.iter_rows(named=True):
        assert row["churn_risk"] == p_churn.get(row["org"])
    expected = membership(SegmentSet.model_validate(SEGMENTS), facts)
    assert any("risky-buyers" in codes for codes in expected.values())
    assert any("big" in codes for codes in expected.values())
    o = t.organizations
    with allegiance.read() as uow:
        attributes = dict(uow.conn.execute(select(o.c.external_id, o.c.attributes)
                                           .where(o.c.program_id == program_id)).all())
    for org, codes in expected.items():
        assert attributes[org].get("segments", []) == codes, org

    # a re-run the same day replaces the day's snapshot instead of adding one
    with allegiance.write() as uow:
        uow.analytics.run(program_id, kinds=("overview",))
    with allegiance.read() as uow:
        assert len(uow.analytics.history(program_id, "overview")) == 1
        members = uow.analytics.segment_members(program_id, "big")
    assert sorted(r["org"] for r in members["organizations"]) == sorted(o for o, c in expected.items() if "big" in c)


def test_segment_membership_drives_an_earning_rule(allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        uow.events.declare_type(program.id, "order.placed", {"type": "object"})
    vip = f.organization(allegiance, program.id, external_id="VIP-1")
    plain = f.organization(allegiance, program.id, external_id="PLAIN-1")
    with allegiance.write() as uow:
        uow.analytics_store.save_snapshot(program.id, "facts", datetime.now(UTC).date() - timedelta(days=1), {
            "rows": [_fact("VIP-1", revenue=5_000_000), _fact("PLAIN-1", revenue=10)]})
        uow.analytics.save_segments(program.id, {"segments": [
            {"code": "vip", "name": "VIP", "conditions": [{"field": "revenue_12m", "op": "gte", "value": 1e6}]}]},
            by="test")
    activate(allegiance, program.id, {"rules": [{
        "code": "vip-bonus", "name": "VIP bonus", "trigger": "order.placed",
        "conditions": [{"field": "organization.attributes.segments", "op": "contains", "value": "vip"}],
        "action": {"kind": "fixed", "amount": 100},
        "goal": {"behavior": "keep VIPs", "metric": "retention", "expected_uplift": "+1 %"}}]})
    assert record(allegiance, program.id, "order.placed", {"amount_minor": 1}, org=vip["id"])
    assert not record(allegiance, program.id, "order.placed", {"amount_minor": 1}, org=plain["id"])


def _fact(org: str, *, revenue: float) -> dict[str, Any]:
    return {"org": org, "kind": "customer", "segment": None, "country": None, "status": "active", "tier": None,
            "rfm_segment": None, "churn_risk": None, "health_score": None, "clv": None, "revenue_12m": revenue,
            "orders_12m": 1.0, "days_since_last_order": 1.0, "nps": None, "people": 0.0, "roles": []}


def test_bad_settings_and_segments_are_refused_naming_the_field(allegiance: Allegiance,
                                                                 program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        with pytest.raises(ValidationFailed) as bad_margin:
            uow.analytics.save_settings(program.id, {"margin": 1.5}, by="test")
        with pytest.raises(ValidationFailed) as unknown:
            uow.analytics.save_settings(program.id, {"churn_horizon": 30}, by="test")
        with pytest.raises(ValidationFailed) as weight:
            uow.analytics.save_settings(program.id, {"health": {"weights": {"mood": 1}}}, by="test")
        with pytest.raises(ValidationFailed) as segment:
            uow.analytics.save_segments(program.id, {"segments": [
                {"code": "x", "name": "X", "conditions": [{"field": "churn_risk", "op": "contains", "value": "a"}]}]},
                by="test")
    assert bad_margin.value.field == "margin"
    assert unknown.value.field == "churn_horizon"
    assert weight.value.field.startswith("health.weights")
    assert segment.value.field == "segments.segments[0].conditions[0]"
    with allegiance.write() as uow:
        first = uow.analytics.save_settings(program.id, {"margin": 0.4}, by="test")
        second = uow.analytics.save_settings(program.id, {"margin": 0.5, "churn_horizon_days": 60}, by="test")
    assert (first["version"], second["version"]) == (1, 2)
    with allegiance.read() as uow:
        assert uow.analytics.settings(program.id).churn_horizon_days == 60
        with pytest.raises(NotFound):
            uow.analytics.latest(program.id, "overview")
        with pytest.raises(NotFound):
            uow.analytics.latest(program.id, "nonsense")


def test_a_program_without_history_stores_what_it_can_and_says_why_the_rest_is_missing(
        allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        result = uow.analytics.run(program.id)
    assert {"clv", "churn"} <= set(result.skipped)
    assert "churn" in result.skipped["churn"] and "lifetime value" in result.skipped["clv"]
    assert "overview" in result.documents
    with allegiance.read() as uow:
        with pytest.raises(NotFound):
            uow.analytics.latest(program.id, "churn")
        overview = uow.analytics.latest(program.id, "overview")["document"]
    assert overview["repeat_customer_rate"]["buyers"] == 0
    assert "unavailable" in overview["retention_gain"]
