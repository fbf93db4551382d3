"""Segments: validation names the bad part; membership is exactly the rows every condition holds for."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.segments import FACT_SCHEMA, SegmentInvalid, members, membership, parse_segments


def facts(rows: list[dict[str, object]]) -> pl.DataFrame:
    full = [{name: row.get(name) for name in FACT_SCHEMA} for row in rows]
    return pl.DataFrame(full, schema=FACT_SCHEMA)


FACTS = facts([
    {"org": "A", "tier": "gold", "churn_risk": 0.8, "roles": ["owner", "purchasing_manager"]},
    {"org": "B", "tier": "gold", "churn_risk": 0.7, "roles": ["owner"]},
    {"org": "C", "tier": "silver", "churn_risk": 0.9, "roles": ["purchasing_manager"]},
    {"org": "D", "tier": "gold", "churn_risk": 0.2, "roles": ["purchasing_manager"]},
    {"org": "E", "tier": None, "churn_risk": None, "roles": []},
])


def test_the_issue_example_selects_gold_at_risk_with_a_purchasing_manager() -> None:
    parsed = parse_segments({"segments": [{"code": "at-risk-gold", "name": "Gold at risk", "conditions": [
        {"field": "tier", "op": "eq", "value": "gold"},
        {"field": "churn_risk", "op": "gt", "value": 0.6},
        {"field": "roles", "op": "contains", "value": "purchasing_manager"}]}]})
    assert members(parsed.segments[0], FACTS) == ["A"]


def test_nulls_never_match_comparisons_but_match_ne_and_not_exists() -> None:
    parsed = parse_segments({"segments": [
        {"code": "low", "name": "Low risk", "conditions": [{"field": "churn_risk", "op": "lt", "value": 0.5}]},
        {"code": "not-gold", "name": "Not gold", "conditions": [{"field": "tier", "op": "ne", "value": "gold"}]},
        {"code": "no-tier", "name": "No tier", "conditions": [{"field": "tier", "op": "exists", "value": False}]},
        {"code": "all", "name": "Everyone"}]})
    assert membership(parsed, FACTS) == {"A": ["all"], "B": ["all"], "C": ["all", "not-gold"], "D": ["all", "low"],
                                         "E": ["all", "no-tier", "not-gold"]}


@pytest.mark.parametrize(("document", "path", "words"), [
    ({"segments": [{"code": "x", "name": "X", "conditions": [{"field": "colour", "op": "eq", "value": 1}]}]},
     "segments[0].conditions[0].field", "unknown field"),
    ({"segments": [{"code": "x", "name": "X", "conditions": [{"field": "tier", "op": "like", "value": 1}]}]},
     "segments[0].conditions[0].op", "Input should be"),
    ({"segments": [{"code": "x", "name": "X", "conditions": [{"field": "tier", "op": "gt", "value": 1}]}]},
     "segments[0].conditions[0]", "numeric field"),
    ({"segments": [{"code": "x", "name": "X", "conditions": [{"field": "tier", "op": "eq", "value": 1,
                                                              "extra": 2}]}]},
     "segments[0].conditions[0].extra", "Extra inputs"),
    ({"segments": [{"code": "X Y", "name": "X"}]}, "segments[0].code", "lowercase"),
    ({"segments": [{"code": "x", "name": "X"}, {"code": "x", "name": "Y"}]}, "segments", "duplicate"),
])
def test_a_bad_definition_names_its_path(document: dict[str, object], path: str, words: str) -> None:
    with pytest.raises(SegmentInvalid) as caught:
        parse_segments(document)  # type: ignore[arg-type]
    assert caught.value.field == path
    assert words in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["gold", "silver", None]), st.one_of(st.none(), st.floats(0, 1))),
                min_size=0, max_size=30), st.floats(0, 1))
def test_membership_equals_a_row_by_row_check(rows: list[tuple[str | None, float | None]], threshold: float) -> None:
    frame = facts([{"org": f"O{i}", "tier": tier, "churn_risk": risk} for i, (tier, risk) in enumerate(rows)])
    parsed = parse_segments({"segments": [{"code": "s", "name": "S", "conditions": [
        {"field": "tier", "op": "in", "value": ["gold"]}, {"field": "churn_risk", "op": "gte", "value": threshold}]}]})
    expected = sorted(f"O{i}" for i, (tier, risk) in enumerate(rows)
                      if tier == "gold" and risk is not None and risk >= threshold)
    assert members(parsed.segments[0], frame) == expected
