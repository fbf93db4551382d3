"""The churn model: metrics by hand, the generic trainer, a time-split evaluation on the synthetic
program against logistic regression, reasons that recover the planted drivers, and profiles."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from allegiance.analytics.churn.features import FEATURE_NAMES, churn_features
from allegiance.analytics.churn.model import (
    INTERVENTIONS,
    ChurnEvaluation,
    churn_profiles,
    classifier_metrics,
    evaluate_churn,
    fit_classifier,
    reason_text,
    score_churn,
    training_set,
)
from allegiance.analytics.frames import Frames, from_synthetic
from allegiance.synthetic import CHURN_DRIVERS, SynthConfig, generate

HORIZON = 90
TRAIN_CUTOFFS = [dt.date(2024, m, 1) for m in range(7, 13)] + [dt.date(2025, m, 1) for m in range(1, 7)]
TEST_CUTOFF = dt.date(2025, 9, 1)
# Quarterly, so each churner of the second world is a positive at exactly one cutoff.
EXPLAIN_CUTOFFS = [dt.date(2024, 7, 1), dt.date(2024, 10, 1), dt.date(2025, 1, 1), dt.date(2025, 4, 1),
                   dt.date(2025, 7, 1), dt.date(2025, 10, 1)]


@pytest.fixture(scope="module")
def world() -> Frames:
    return from_synthetic(generate(SynthConfig(seed=1, organizations=1500)))


@pytest.fixture(scope="module")
def evaluation(world: Frames) -> ChurnEvaluation:
    return evaluate_churn(world, TRAIN_CUTOFFS, TEST_CUTOFF, HORIZON, seed=0)


# --- metrics and the generic trainer ---------------------------------------------------------------


def test_metrics_match_a_hand_computation() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.95, 0.9, 0.35, 0.3, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.0])
    m = classifier_metrics(y, p)
    # ceil(10 % of 11) = 2 highest: 0.95 (churned) and 0.9 (stayed)
    assert m.precision_at_10pct == 0.5
    assert m.brier == pytest.approx(sum((pi - yi) ** 2 for pi, yi in zip(p, y, strict=True)) / 11)
    # 2 positives x 9 negatives = 18 pairs; the 0.35 positive is beaten only by the 0.9 negative
    assert m.auc == pytest.approx(17 / 18)
    bins = {(round(b.lower, 1), b.count, round(b.observed_rate, 3)) for b in m.reliability}
    assert bins == {(0.0, 5, 0.0), (0.1, 2, 0.0), (0.3, 2, 0.5), (0.9, 2, 0.5)}
    assert sum(b.count for b in m.reliability) == 11 and (m.rows, m.positives) == (11, 2)


def _logistic_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] - 1.0)))).astype(int)
    return x, y


def test_the_trainer_is_deterministic_calibrated_and_its_contributions_add_up() -> None:
    x, y = _logistic_data(4000, seed=3)
    x_test, y_test = _logistic_data(4000, seed=4)
    a = fit_classifier(x, y, feature_names=["signal", "negative", "noise"], seed=0)
    b = fit_classifier(x, y, feature_names=["signal", "negative", "noise"], seed=0)
    p = a.predict_proba(x_test)
    assert np.array_equal(p, b.predict_proba(x_test))
    # Platt scaling is monotone: the calibrated ranking is the booster's
    raw = a.booster.predict(x_test, raw_score=True)
    assert roc_auc_score(y_test, p) == pytest.approx(roc_auc_score(y_test, raw), abs=1e-12)
    # calibrated: predicted and observed churn agree overall and where it matters
    assert abs(p.mean() - y_test.mean()) < 0.02
    assert classifier_metrics(y_test, p).brier < y_test.mean() * (1 - y_test.mean())
    # SHAP: per row, contributions + expected value = raw log-odds; signs and sizes as simulated
    contrib = a.contributions(x_test)
    full = a.booster.predict(x_test, pred_contrib=True)
    assert np.allclose(full.sum(axis=1), raw) and np.array_equal(contrib, full[:, :-1])
    assert np.corrcoef(contrib[:, 0], x_test[:, 0])[0, 1] > 0.9
    assert np.corrcoef(contrib[:, 1], x_test[:, 1])[0, 1] < -0.9
    strength = np.abs(contrib).mean(axis=0)
    assert strength[0] > strength[1] > 3 * strength[2]


def test_time_respecting_calibration_fits_on_the_latest_times() -> None:
    x, y = _logistic_data(3000, seed=5)
    time = np.repeat(np.arange(6), 500)
    model = fit_classifier(x, y, time=time, calibration="isotonic", calibration_share=1 / 3)
    # the booster saw only times 0..3: refitting it on them reproduces it exactly
    again = fit_classifier(x[time < 4], y[time < 4], time=time[time < 4], calibration_share=0.25)
    assert model.booster.n_features_in_ == 3 and again.booster.n_features_in_ == 3
    p = model.predict_proba(x)
    assert p.min() >= 0.0 and p.max() <= 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"y": np.zeros(10)}, "both classes"),
    ({"feature_names": ["a"]}, "feature names"),
    ({"calibration": "beta"}, "calibration"),
    ({"time": np.zeros(10)}, "two distinct times"),
    ({"time": np.arange(10), "calibration_share": 1.0}, "calibration_share"),
])
def test_the_trainer_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"x": np.zeros((10, 2)), "y": np.array([0, 1] * 5), **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_classifier(**args)  # type: ignore[arg-type]


# --- the synthetic program -------------------------------------------------------------------------


def test_the_model_beats_logistic_regression_on_a_later_cutoff(evaluation: ChurnEvaluation) -> None:
    m, lr = evaluation.model, evaluation.baseline
    base_rate = m.positives / m.rows
    assert m.positives >= 50 and m.rows > 1200
    assert m.auc >= 0.9 and m.auc > lr.auc
    assert m.precision_at_10pct >= 4 * base_rate and m.precision_at_10pct >= lr.precision_at_10pct
    assert m.brier < base_rate * (1 - base_rate) and m.brier <= lr.brier
    # calibration: the count-weighted gap between predicted and observed rates is small
    ece = sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in m.reliability) / m.rows
    assert ece < 0.03


def test_training_cutoffs_may_not_see_past_the_test_cutoff(world: Frames) -> None:
    with pytest.raises(ValueError, match="past the test cutoff"):
        evaluate_churn(world, [dt.date(2025, 7, 1)], TEST_CUTOFF, HORIZON)


def test_the_top_reasons_recover_the_planted_driver(evaluation: ChurnEvaluation) -> None:
    # given a second, independent world the model never saw
    program = generate(SynthConfig(seed=2, organizations=800))
    drivers = {ext: p.churn_driver for ext, p in program.latent.items()}
    rows = training_set(from_synthetic(program), EXPLAIN_CUTOFFS, HORIZON)
    # when its organizations are scored at each cutoff and the top decile flagged
    scored = []
    for cutoff in EXPLAIN_CUTOFFS:
        at_cutoff = rows.filter(pl.col("cutoff") == cutoff)
        s = score_churn(evaluation.fitted, at_cutoff)
        scored.append(s.with_columns(flagged=pl.int_range(pl.len()) < math.ceil(0.1 * s.height))
                      .join(at_cutoff.select("org", "churned"), on="org"))
    churners = pl.concat(scored).filter(pl.col("churned") & pl.col("flagged"))
    # then most flagged churners driven by X have a reason of family X among their top three
    for driver in CHURN_DRIVERS:
        group = churners.filter(pl.col("org").replace_strict(drivers, default=None) == driver)
        recovered = group.select(pl.col("reason_families").list.contains(driver)).to_series()
        assert group.height >= 8, driver
        assert recovered.mean() >= 0.7, (driver, recovered.mean())  # type: ignore[operator]


def test_scores_carry_readable_reasons_and_interventions(evaluation: ChurnEvaluation) -> None:
    scored = score_churn(evaluation.fitted, evaluation.test)
    assert scored.height == evaluation.test.height
    assert scored["p_churn"].is_sorted(descending=True)
    top = scored.row(0, named=True)
    assert 1 <= len(top["reasons"]) <= 3 and len(top["reason_texts"]) >= 1
    assert top["intervention"] == INTERVENTIONS[top["main_family"]]
    assert set(scored["main_family"].unique()) <= set(INTERVENTIONS)


def test_reason_texts_read_from_the_organizations_own_values() -> None:
    row = {name: 0.0 for name in FEATURE_NAMES} | {
        "nps_recent": 4.0, "nps_baseline": 9.0, "nps_latest": 3.0, "orders_90d": 1.0, "orders_prior_90d": 6.0,
        "days_since_key_person_left": 45.0, "complaints_90d": 5.0, "complaints_prior_90d": 1.0,
        "paid_ratio": None, "segment": "enterprise", "recency_days": 120.0}
    assert reason_text("nps_trend", row) == "NPS fell from 9.0 to 4.0"
    assert reason_text("order_trend", row) == "orders fell from 6 to 1 per 90 days"
    assert reason_text("complaints_90d", row) == "complaints rose from 1 to 5 per 90 days"
    assert reason_text("key_person_left_180d", row) == "owner or purchasing manager left 45 days ago"
    assert reason_text("recency_days", row) == "no order for 120 days"
    assert reason_text("paid_ratio", row) == "no invoice due in the last 180 days"
    assert reason_text("segment_enterprise", row) == "segment: enterprise"
    assert reason_text("nps_latest", row | {"nps_baseline": None}) == "latest NPS answer: 3"


def test_profiles_group_at_risk_organizations_by_main_reason(evaluation: ChurnEvaluation) -> None:
    scored = score_churn(evaluation.fitted, evaluation.test)
    profiles = churn_profiles(scored, evaluation.test, threshold=0.3)
    at_risk = scored.filter(pl.col("p_churn") >= 0.3)
    assert profiles["organizations"].sum() == at_risk.height > 0
    assert set(profiles["profile"]) <= set(at_risk["main_family"])
    assert profiles["value_at_risk_minor"].is_sorted(descending=True)
    spend = dict(evaluation.test.select("org", "spend_365d").iter_rows())
    for p in profiles.iter_rows(named=True):
        assert p["intervention"] == INTERVENTIONS[p["profile"]]
        assert p["value_at_risk_minor"] == sum(round(spend[o] * 100) for o in p["orgs"])
        assert 0 <= p["expected_loss_minor"] <= p["value_at_risk_minor"] and 1 <= len(p["main_reasons"]) <= 3
    # a given value (e.g. CLV) replaces the trailing spend
    clv = at_risk.select("org", value_minor=pl.lit(1_000, dtype=pl.Int64))
    with_clv = churn_profiles(scored, evaluation.test, threshold=0.3, value=clv)
    assert with_clv["value_at_risk_minor"].sum() == 1_000 * at_risk.height


def test_a_model_of_another_feature_set_is_refused(world: Frames) -> None:
    x, y = _logistic_data(500, seed=1)
    other = fit_classifier(x, y)
    with pytest.raises(ValueError, match="churn feature set"):
        score_churn(other, churn_features(world, TEST_CUTOFF).head(5))


def test_an_empty_population_scores_to_empty_frames() -> None:
    x, y = _logistic_data(500, seed=2)
    model = fit_classifier(np.hstack([x, np.zeros((500, len(FEATURE_NAMES) - 3))]), y, feature_names=FEATURE_NAMES)
    empty = churn_features(Frames(), TEST_CUTOFF)
    scored = score_churn(model, empty)
    assert scored.height == 0 and scored.columns[:3] == ["org", "cutoff", "p_churn"]
    assert churn_profiles(scored, empty).height == 0
