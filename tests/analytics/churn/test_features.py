"""Churn features on a hand-computed example, the population rule, labels, and no look-ahead."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.churn.features import FEATURE_NAMES, FEATURES, churn_features, population
from allegiance.analytics.churn.model import churn_labels
from allegiance.analytics.frames import SCHEMAS, Frames

CUTOFF = dt.date(2025, 7, 1)


def at(y: int, m: int, d: int, h: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=dt.UTC)


def frame(name: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = SCHEMAS[name]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema, orient="row")


def org(ext: str, segment: str, joined: dt.date, left: dt.date | None = None, kind: str = "customer",
        ) -> dict[str, Any]:
    return {"org": ext, "name": ext, "kind": kind, "segment": segment, "status": "left" if left else "active",
            "joined_on": joined, "left_on": left}


def example() -> Frames:
    """A: a customer with a bit of everything; B: new and silent; C left before the cutoff; D is a
    dealer; E joins after the cutoff; F leaves on the cutoff day; G stopped ordering in March."""
    orgs = frame("organizations", [
        org("A", "small-business", dt.date(2024, 1, 1)), org("B", "mid-market", dt.date(2025, 6, 1)),
        org("C", "enterprise", dt.date(2023, 1, 1), dt.date(2025, 6, 15)),
        org("D", "mid-market", dt.date(2020, 1, 1), kind="dealer"), org("E", "education", dt.date(2025, 8, 1)),
        org("F", "public-sector", dt.date(2023, 1, 1), dt.date(2025, 7, 1)),
        org("G", "enterprise", dt.date(2023, 1, 1)),
    ])
    orders = frame("orders", [
        {"org": "A", "order_id": "a1", "participant": "P-A1", "occurred_at": at(2025, 6, 20), "amount_minor": 10_000},
        {"org": "A", "order_id": "a2", "occurred_at": at(2025, 5, 1), "amount_minor": 20_000},
        {"org": "A", "order_id": "a3", "occurred_at": at(2025, 3, 15), "amount_minor": 5_000},
        {"org": "A", "order_id": "a4", "occurred_at": at(2025, 1, 10), "amount_minor": 5_000},
        {"org": "A", "order_id": "a5", "occurred_at": at(2024, 8, 1), "amount_minor": 1_000},
        {"org": "A", "order_id": "a6", "occurred_at": at(2025, 7, 2), "amount_minor": 99_000},  # after: ignored
        {"org": "G", "order_id": "g1", "occurred_at": at(2025, 3, 1), "amount_minor": 7_000},
    ])
    returns = frame("returns", [{"org": "A", "order_id": "a2", "occurred_at": at(2025, 5, 10), "amount_minor": 3_000}])
    activity = frame("activity", [
        {"org": "A", "participant": "P-A4", "type": "complaint.opened", "occurred_at": at(2025, 6, 1)},
        {"org": "A", "type": "complaint.opened", "occurred_at": at(2025, 5, 15)},
        {"org": "A", "type": "complaint.opened", "occurred_at": at(2025, 2, 1)},
        {"org": "A", "type": "price.objection", "occurred_at": at(2025, 6, 10)},
        {"org": "A", "participant": "P-A2", "type": "training.completed", "occurred_at": at(2025, 6, 5)},
        {"org": "A", "participant": "P-A2", "type": "training.completed", "occurred_at": at(2025, 2, 5)},
        {"org": "A", "type": "invoice.paid", "occurred_at": at(2025, 5, 20)},
        {"org": "A", "type": "invoice.paid", "occurred_at": at(2025, 3, 1)},
        {"org": "A", "type": "survey.answered", "occurred_at": at(2025, 6, 15)},  # not engagement
        {"org": "A", "type": "complaint.opened", "occurred_at": at(2025, 7, 1, 0)},  # on the cutoff: ignored
    ])
    responses = frame("responses", [
        {"org": "A", "occurred_at": at(2024, 10, 1), "score": 9},
        {"org": "A", "occurred_at": at(2025, 1, 15), "score": 8},
        {"org": "A", "occurred_at": at(2025, 5, 1), "score": 4},
        {"org": "A", "occurred_at": at(2025, 6, 15), "score": 3},
        {"org": "A", "occurred_at": at(2025, 7, 5), "score": 10},  # after: ignored
    ])
    people = frame("people", [
        {"participant": "P-A1", "org": "A", "role": "owner", "status": "active"},
        {"participant": "P-A2", "org": "A", "role": "engineer", "status": "active"},
        {"participant": "P-A3", "org": "A", "role": "purchasing_manager", "status": "left",
         "left_on": dt.date(2025, 5, 1)},
        {"participant": "P-A4", "org": "A", "role": "other", "status": "left", "left_on": dt.date(2025, 7, 10)},
        {"participant": "P-B1", "org": "B", "role": "owner", "status": "active"},
    ])
    program = frame("program", [
        {"org": "A", "participant": "P-A1", "occurred_at": at(2025, 6, 1), "kind": "earned", "amount": 100},
        {"org": "A", "occurred_at": at(2025, 3, 1), "kind": "earned", "amount": 50},
        {"org": "A", "occurred_at": at(2025, 6, 15), "kind": "redeemed", "amount": 30},
    ])
    return Frames(organizations=orgs, people=people, orders=orders, returns=returns, activity=activity,
                  responses=responses, program=program)


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    return churn_features(example(), CUTOFF)


def row(features: pl.DataFrame, ext: str) -> dict[str, Any]:
    return features.filter(pl.col("org") == ext).to_dicts()[0]


def test_the_population_is_customers_joined_and_not_yet_gone(features: pl.DataFrame) -> None:
    assert features["org"].to_list() == ["A", "B", "F", "G"]
    assert population(example().organizations, CUTOFF, None)["org"].sort().to_list() == ["A", "B", "D", "F", "G"]
    assert features.columns == ["org", "cutoff", "segment", *FEATURE_NAMES]
    assert all(features.schema[n] == pl.Float64 for n in FEATURE_NAMES)
    assert len({f.name for f in FEATURES}) == len(FEATURES) and all(f.label for f in FEATURES)


def test_a_customers_features_match_the_hand_computation(features: pl.DataFrame) -> None:
    a = row(features, "A")
    expected = {
        "recency_days": 10.0,  # 10.5 days since 2025-06-20 12:00, whole days
        "orders_90d": 2.0, "orders_prior_90d": 2.0, "order_trend": 0.0,
        "spend_90d": 300.0, "spend_prior_90d": 100.0, "spend_trend": math.log(301 / 101), "spend_365d": 410.0,
        "return_rate_180d": 3_000 / 40_000,
        "complaints_90d": 2.0, "complaints_prior_90d": 1.0, "complaints_trend": 1.0,
        "nps_latest": 3.0, "nps_recent": 3.5, "nps_baseline": 8.5, "nps_trend": -5.0,
        "competitor_90d": 1.0, "competitor_prior_90d": 0.0, "competitor_trend": 1.0,
        "engagement_90d": 1.0, "engagement_trend": 0.0,
        "program_movements_90d": 2.0, "program_earned_90d": 100.0, "program_redeemed_90d": 30.0,
        "program_trend": math.log(101 / 51),
        "roles_engaged_180d": 3.0,  # owner (order, points), engineer (training), other (complaint)
        "paid_ratio": 2 / 3,  # 2 invoices for orders a2, a3, a4 due in [cutoff - 210 d, cutoff - 30 d)
        "people_left_180d": 1.0, "key_person_left_180d": 1.0, "days_since_key_person_left": 61.0,
        "headcount": 3.0,  # P-A4 leaves after the cutoff
        "tenure_days": 547.0,
        "segment_small-business": 1.0, "segment_enterprise": 0.0,
    }
    for name, value in expected.items():
        assert a[name] == pytest.approx(value), name


def test_an_organization_without_history_gets_zeros_and_unknowns(features: pl.DataFrame) -> None:
    b = row(features, "B")
    assert b["recency_days"] == 30.0  # never ordered: days since joining
    assert b["orders_90d"] == b["complaints_90d"] == b["spend_365d"] == b["people_left_180d"] == 0.0
    assert b["nps_latest"] is None and b["nps_trend"] is None and b["paid_ratio"] is None
    assert b["days_since_key_person_left"] == 730.0 and b["headcount"] == 1.0
    assert b["segment_mid-market"] == 1.0


def test_labels_follow_the_rule() -> None:
    frames = example()

    def labels(rule: str) -> dict[str, bool | None]:
        out = churn_labels(frames, CUTOFF, 30, rule=rule)  # type: ignore[arg-type]
        return dict(zip(out["org"].to_list(), out["churned"].to_list(), strict=True))

    assert labels("left") == {"A": False, "B": False, "F": True, "G": False}
    # A ordered on 2025-07-02; B and F never ordered in the year before: no silent label.
    assert labels("silent") == {"A": False, "B": None, "F": None, "G": True}
    assert labels("either") == {"A": False, "B": None, "F": True, "G": True}
    with pytest.raises(ValueError, match="horizon_days"):
        churn_labels(frames, CUTOFF, 0)


_after = st.datetimes(min_value=dt.datetime(2025, 7, 1), max_value=dt.datetime(2026, 12, 31),
                      timezones=st.just(dt.UTC))


@settings(max_examples=25, deadline=None)
@given(order_times=st.lists(_after, max_size=5), activity_times=st.lists(_after, max_size=5),
       scores=st.lists(st.tuples(_after, st.integers(0, 10)), max_size=5),
       kind=st.sampled_from(["complaint.opened", "quote.lost", "training.completed", "invoice.paid"]))
def test_nothing_on_or_after_the_cutoff_changes_a_feature(order_times: list[dt.datetime],
                                                           activity_times: list[dt.datetime],
                                                           scores: list[tuple[dt.datetime, int]], kind: str) -> None:
    base = example()
    extra = Frames(
        organizations=base.organizations, people=base.people, returns=base.returns, program=base.program,
        orders=pl.concat([base.orders, frame("orders", [
            {"org": "B", "order_id": f"x{i}", "occurred_at": t, "amount_minor": 1}
            for i, t in enumerate(order_times)])]),
        activity=pl.concat([base.activity, frame("activity", [
            {"org": "B", "participant": "P-B1", "type": kind, "occurred_at": t} for t in activity_times])]),
        responses=pl.concat([base.responses, frame("responses", [
            {"org": "B", "occurred_at": t, "score": s} for t, s in scores])]),
    )
    assert churn_features(extra, CUTOFF).equals(churn_features(base, CUTOFF))
