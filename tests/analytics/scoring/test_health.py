"""The health score: configuration validation, a hand-computed score, invariants of the weighting,
and a backtest on the synthetic program's churners."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.churn.features import FEATURE_NAMES
from allegiance.analytics.frames import Frames, from_synthetic
from allegiance.analytics.scoring import (
    COMPONENTS,
    HealthScoreConfig,
    backtest_score,
    health_scores,
    health_scores_from_features,
)
from allegiance.synthetic import SynthConfig, generate

CUTOFF = dt.date(2025, 6, 1)


def features(*rows: dict[str, Any]) -> pl.DataFrame:
    """churn_features-shaped rows: every feature 0 unless given."""
    full = [{"org": f"O{i}", "cutoff": CUTOFF, "segment": None} | {n: 0.0 for n in FEATURE_NAMES} | r
            for i, r in enumerate(rows)]
    schema = {"org": pl.String, "cutoff": pl.Date, "segment": pl.String} | {n: pl.Float64 for n in FEATURE_NAMES}
    return pl.DataFrame(full, schema=schema)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"weights": {"nps": -1.0}}, "weights.nps"),
    ({"weights": {"loyalty_vibes": 1.0}}, "weights.loyalty_vibes"),
    ({"weights": {"nps": math.nan}}, "weights.nps"),
    ({"weights": {"nps": "high"}}, "weights.nps"),
    ({"weights": {"nps": 0.0, "breadth": 0.0}}, "weights"),
    ({"recency_scale_days": 0}, "recency_scale_days"),
    ({"complaint_scale": -2.0}, "complaint_scale"),
    ({"missing": 150}, "missing"),
    ({"version": " "}, "version"),
])
def test_a_bad_configuration_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}(:| must)"):
        HealthScoreConfig(**kwargs)


def test_a_configuration_round_trips_and_cannot_change_under_a_score() -> None:
    config = HealthScoreConfig(version="q3-sales", weights={"nps": 2, "complaints": 1}, missing=60.0)
    assert HealthScoreConfig.from_dict(config.to_dict()) == config
    assert config.weight("nps") == pytest.approx(2 / 3) and config.weight("breadth") == 0.0
    with pytest.raises(TypeError):
        config.weights["nps"] = 5.0  # type: ignore[index]
    with pytest.raises(ValueError, match=r"^colour: unknown"):
        HealthScoreConfig.from_dict({"colour": "green"})


def test_a_score_matches_the_hand_computation() -> None:
    frame = features({"spend_trend": 0.0, "recency_days": 0.0, "engagement_90d": 2.0, "nps_recent": 7.0,
                      "nps_latest": 2.0, "complaints_90d": 0.0, "paid_ratio": 0.5, "roles_engaged_180d": 6.0},
                     {"paid_ratio": None, "nps_recent": None, "nps_latest": None, "complaints_90d": 3.0,
                      "recency_days": 60.0, "spend_trend": math.log(4.0)})
    out = health_scores_from_features(frame).to_dicts()
    first = {c: out[0][f"{c}_score"] for c in COMPONENTS}
    assert first == pytest.approx({
        "purchase_trend": (50 + 100) / 2,  # flat spend, ordered today
        "engagement": 100 * (1 - math.exp(-1)),  # 2 events at scale 2
        "nps": 70.0,  # the recent mean wins over the latest answer
        "complaints": 100.0, "payments": 50.0, "breadth": 100.0,  # 6 roles, capped at the target of 3
    })
    expected = 0.3 * 75 + 0.15 * 100 * (1 - math.exp(-1)) + 0.2 * 70 + 0.15 * 100 + 0.1 * 50 + 0.1 * 100
    assert out[0]["health_score"] == pytest.approx(expected)
    second = out[1]
    assert second["nps_score"] == second["payments_score"] == 50.0  # unknown -> `missing`
    assert second["complaints_score"] == pytest.approx(100 * math.exp(-2))
    assert second["purchase_trend_score"] == pytest.approx((100 / (1 + 4 ** -2) + 100 * math.exp(-1)) / 2)
    assert second["breadth_score"] == 0.0 and out[0]["config_version"] == "health-v1"


_weights = st.dictionaries(st.sampled_from(COMPONENTS), st.floats(0.0, 10.0), min_size=1).filter(
    lambda w: sum(w.values()) > 1e-6)
_value = st.floats(0.0, 400.0)


@settings(max_examples=60, deadline=None)
@given(weights=_weights, scale=st.floats(0.01, 100.0),
       rows=st.lists(st.fixed_dictionaries({
           "spend_trend": st.floats(-15.0, 15.0), "recency_days": st.floats(0.0, 730.0),
           "engagement_90d": _value, "program_movements_90d": _value,
           "nps_recent": st.none() | st.floats(0.0, 10.0), "nps_latest": st.none() | st.floats(0.0, 10.0),
           "complaints_90d": _value, "paid_ratio": st.none() | st.floats(0.0, 1.5),
           "roles_engaged_180d": st.floats(0.0, 6.0)}), min_size=1, max_size=8))
def test_contributions_add_up_and_scores_stay_in_range(weights: dict[str, float], scale: float,
                                                       rows: list[dict[str, Any]]) -> None:
    frame = features(*rows)
    out = health_scores_from_features(frame, HealthScoreConfig(weights=weights))
    total = out.select(pl.sum_horizontal([f"{c}_contribution" for c in COMPONENTS])).to_series()
    assert (total - out["health_score"]).abs().max() < 1e-9  # type: ignore[operator]
    for column in ["health_score", *(f"{c}_score" for c in COMPONENTS)]:
        assert out[column].min() >= 0.0 and out[column].max() <= 100.0  # type: ignore[operator]
    scaled = health_scores_from_features(frame, HealthScoreConfig(weights={k: v * scale for k, v in weights.items()}))
    assert (scaled["health_score"] - out["health_score"]).abs().max() < 1e-9  # type: ignore[operator]
    worse = health_scores_from_features(frame.with_columns(pl.col("complaints_90d") + 1),
                                        HealthScoreConfig(weights=weights))
    assert (worse["health_score"] <= out["health_score"] + 1e-9).all()


@pytest.fixture(scope="module")
def world() -> Frames:
    return from_synthetic(generate(SynthConfig(seed=5, organizations=1200)))


def test_the_default_score_separates_churners(world: Frames) -> None:
    result = backtest_score(HealthScoreConfig(), world, CUTOFF, 90)
    assert result.churners >= 30 and result.organizations > 1000
    assert result.auc >= 0.75 and result.top_decile_lift >= 3.0
    # one weak component alone separates worse than the blend
    breadth_only = backtest_score(HealthScoreConfig(version="breadth", weights={"breadth": 1}), world, CUTOFF, 90)
    assert breadth_only.version == "breadth" and breadth_only.auc < result.auc


def test_scores_cover_the_population_at_the_cutoff(world: Frames) -> None:
    scores = health_scores(world, CUTOFF)
    assert scores["org"].n_unique() == scores.height > 1000
    assert scores["cutoff"].unique().to_list() == [CUTOFF]


def test_a_backtest_with_nothing_to_separate_is_refused(world: Frames) -> None:
    with pytest.raises(ValueError, match="single class"):
        backtest_score(HealthScoreConfig(), world, dt.date(2026, 6, 1), 30)
