"""Lifetime value: the discounting arithmetic by hand, realised value by hand, and the whole
chain (predict_clv) on the seeded synthetic B2B program, checked against what its organizations
did after the cut-off."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from numpy.typing import ArrayLike
from scipy.stats import spearmanr

from allegiance.analytics import frames
from allegiance.analytics.clv import (
    BGNBDFit,
    BGNBDParams,
    GammaGammaFit,
    GammaGammaParams,
    calibration_and_holdout,
    customer_lifetime_value,
    historical_clv,
    predict_clv,
)
from allegiance.analytics.clv.gammagamma import DAYS_PER_MONTH
from allegiance.synthetic import SynthConfig, generate

SPEND = GammaGammaFit(params=GammaGammaParams(p=6.0, q=3.0, gamma=100.0), log_likelihood=0.0, n=0, converged=True)


class Linear:
    """A purchase model that expects ``rate`` purchases per time unit, whatever the history."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                           T: ArrayLike) -> np.ndarray:
        return np.asarray(t, dtype=float) * self.rate + 0.0 * np.asarray(frequency, dtype=float)


def test_discounting_by_hand() -> None:
    x, t_x, T, zbar = np.array([0.0, 4.0]), np.array([0.0, 50.0]), np.array([60.0, 90.0]), np.array([0.0, 250.0])
    aov = SPEND.expected_order_value(x, zbar)
    # x = 0: the population mean p gamma / (q - 1) = 300; x = 4: 6 (100 + 4*250) / (24 + 2) = 253.8.
    np.testing.assert_allclose(aov, [300.0, 6 * 1100 / 26])
    rate, d, margin = 0.1, 0.02, 0.25
    month = DAYS_PER_MONTH
    three = customer_lifetime_value(Linear(rate), SPEND, x, t_x, T, zbar, horizon=3 * month, discount_rate=d,
                                    margin=margin)
    per_month = rate * month
    np.testing.assert_allclose(three, margin * aov * per_month * sum((1 + d) ** -k for k in (1, 2, 3)))
    # A partial last month is discounted at its own end.
    partial = customer_lifetime_value(Linear(rate), SPEND, x, t_x, T, zbar, horizon=1.5 * month, discount_rate=d,
                                      margin=margin)
    np.testing.assert_allclose(partial, margin * aov * per_month * ((1 + d) ** -1 + 0.5 * (1 + d) ** -1.5))
    # No discount: margin * value * expected purchases.
    flat = customer_lifetime_value(Linear(rate), SPEND, x, t_x, T, zbar, horizon=100.0, discount_rate=0.0)
    np.testing.assert_allclose(flat, aov * rate * 100.0)
    assert np.all(customer_lifetime_value(Linear(rate), SPEND, x, t_x, T, zbar, horizon=0.0) == 0.0)


def test_lifetime_value_does_not_depend_on_the_time_unit() -> None:
    days = BGNBDFit(params=BGNBDParams(r=0.3, alpha=30.0, a=0.8, b=2.5), log_likelihood=0.0, n=0, converged=True)
    weeks = BGNBDFit(params=BGNBDParams(r=0.3, alpha=30.0 / 7, a=0.8, b=2.5), log_likelihood=0.0, n=0,
                     converged=True)
    x, t_x, T, zbar = np.array([0.0, 3.0, 10.0]), np.array([0.0, 70.0, 300.0]), np.array([100.0, 200.0, 350.0]), \
        np.array([0.0, 80.0, 120.0])
    in_days = customer_lifetime_value(days, SPEND, x, t_x, T, zbar, horizon=365.0, discount_rate=0.01, margin=0.3)
    in_weeks = customer_lifetime_value(weeks, SPEND, x, t_x / 7, T / 7, zbar, horizon=365.0 / 7, time_unit="weeks",
                                       discount_rate=0.01, margin=0.3)
    np.testing.assert_allclose(in_days, in_weeks, rtol=1e-10)
    # Discounting only ever lowers the value.
    undiscounted = customer_lifetime_value(days, SPEND, x, t_x, T, zbar, horizon=365.0, discount_rate=0.0, margin=0.3)
    assert np.all(in_days < undiscounted) and np.all(in_days > undiscounted / 1.01 ** 12)


def _frame(name: str, rows: list[tuple[str, dt.datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"org": pl.String(), "occurred_at": pl.Datetime("us", "UTC"),
                                      "amount_minor": pl.Int64()}, orient="row")


def test_historical_clv_by_hand() -> None:
    at = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    later = dt.datetime(2024, 9, 1, tzinfo=dt.UTC)
    orders = _frame("orders", [("A", at, 10_000), ("A", later, 5_000), ("B", at, 2_000)])
    returns = _frame("returns", [("A", at, 1_000), ("C", at, 300), ("A", later, 5_000)])
    out = historical_clv(orders, returns, margin=0.4)
    assert out.rows() == [("A", 15_000, 6_000, 9_000, 3_600.0), ("B", 2_000, 0, 2_000, 800.0),
                          ("C", 0, 300, -300, -120.0)]
    until = historical_clv(orders, returns, margin=1.0, until=dt.date(2024, 6, 30))
    assert until.filter(pl.col("org") == "A").row(0) == ("A", 10_000, 1_000, 9_000, 9_000.0)


@pytest.fixture(scope="module")
def program() -> frames.Frames:
    return frames.from_synthetic(generate(SynthConfig(seed=3, organizations=300, months=24)))


AS_OF = dt.date(2025, 6, 30)
END = dt.date(2025, 12, 31)


@pytest.mark.parametrize("model", ["bgnbd", "paretonbd"])
def test_predict_clv_on_the_synthetic_program(program: frames.Frames, model: str) -> None:
    horizon = (END - AS_OF).days
    out = predict_clv(program.orders, as_of=AS_OF, horizon_days=horizon, model=model,  # type: ignore[arg-type]
                      margin=0.3, discount_rate=0.01)
    assert out.columns[:9] == ["org", "frequency", "recency", "T", "monetary", "p_alive", "expected_purchases",
                               "expected_aov", "clv"]
    assert out["org"].is_sorted() and out["org"].is_unique().all()
    assert out["converged"].all() and (out["model"] == model).all()
    p_alive = out["p_alive"].to_numpy()
    assert np.all((p_alive >= 0) & (p_alive <= 1))
    assert (out["expected_purchases"] >= 0).all() and (out["expected_aov"] > 0).all() and (out["clv"] >= 0).all()
    own = ["param_a", "param_b"] if model == "bgnbd" else ["param_s", "param_beta"]
    other = ["param_s", "param_beta"] if model == "bgnbd" else ["param_a", "param_b"]
    for name in ["param_r", "param_alpha", *own, "param_p", "param_q", "param_gamma"]:
        assert out[name].n_unique() == 1 and out[name][0] > 0
    for name in other:
        assert out[name].null_count() == out.height
    # CLV = margin * order value * discounted purchases: between the undiscounted value and the
    # value discounted for the whole horizon.
    full = 0.3 * out["expected_aov"] * out["expected_purchases"]
    assert (out["clv"] <= full * (1 + 1e-12)).all()
    assert (out["clv"] >= full * 1.01 ** -(horizon / DAYS_PER_MONTH) * (1 - 1e-12)).all()

    # Out of sample: what the organizations did in the next six months.
    actual = calibration_and_holdout(program.orders, calibration_end=AS_OF, observation_end=END)
    joined = out.join(actual.select("org", "frequency_holdout"), on="org")
    predicted, bought = joined["expected_purchases"].to_numpy(), joined["frequency_holdout"].to_numpy()
    assert predicted.sum() == pytest.approx(bought.sum(), rel=0.1)
    assert spearmanr(predicted, bought)[0] > 0.6
    # The hidden truth: organizations that had left the program by the cut-off look dead.
    status = joined.join(program.organizations.select("org", "left_on"), on="org")
    gone = status.filter(pl.col("left_on").is_not_null() & (pl.col("left_on") <= AS_OF))
    staying = status.filter(pl.col("left_on").is_null())
    assert gone.height >= 10
    assert gone["p_alive"].mean() < 0.6 < 0.9 < staying["p_alive"].mean()  # type: ignore[operator]


def test_predict_clv_ignores_orders_after_the_cut_off(program: frames.Frames) -> None:
    before = predict_clv(program.orders, as_of=AS_OF, horizon_days=90)
    cut = program.orders.filter(pl.col("occurred_at").dt.date() <= AS_OF)
    assert before.equals(predict_clv(cut, as_of=AS_OF, horizon_days=90))


def test_predict_clv_rejects_what_it_cannot_fit(program: frames.Frames) -> None:
    with pytest.raises(ValueError, match="model"):
        predict_clv(program.orders, as_of=AS_OF, horizon_days=90, model="nope")  # type: ignore[arg-type]
    one_time = _frame("orders", [(f"O{i}", dt.datetime(2024, 1, 1 + i, tzinfo=dt.UTC), 100) for i in range(5)])
    with pytest.raises(ValueError, match="repeat"):
        predict_clv(one_time, as_of=dt.date(2024, 2, 1), horizon_days=90)
