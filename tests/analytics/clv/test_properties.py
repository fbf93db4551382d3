"""Invariants of the predictions over wide parameter and history ranges (Hypothesis): P(alive) is a
probability, expected purchases are finite, non-negative and grow with the horizon, and the
expected order value is a weighted mean of the population mean and the customer's own."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.clv import bgnbd, gammagamma, paretonbd


def positive(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


@st.composite
def histories(draw: st.DrawFn) -> tuple[float, float, float]:
    """(x, t_x, T) as summary.py can produce them."""
    T = draw(positive(0.1, 1000.0))
    x = draw(st.integers(min_value=0, max_value=300))
    t_x = 0.0 if x == 0 else T * draw(st.floats(min_value=0.0, max_value=1.0))
    return float(x), t_x, T


horizons = st.tuples(positive(0.0, 2000.0), positive(0.0, 2000.0))
SETTINGS = settings(max_examples=300, deadline=None)


def check_expectations(expected_at: list[float], p_alive: float) -> None:
    assert 0.0 <= p_alive <= 1.0
    assert all(np.isfinite(expected_at)) and expected_at[0] >= 0.0
    # Growing in the horizon (up to rounding of the hypergeometric function).
    assert expected_at[1] >= expected_at[0] * (1 - 1e-9) - 1e-12


@SETTINGS
@given(r=positive(0.01, 10), alpha=positive(0.01, 500), a=positive(0.01, 10), b=positive(0.01, 20),
       history=histories(), t=horizons)
def test_bgnbd_predictions_are_probabilities_and_grow_with_the_horizon(
        r: float, alpha: float, a: float, b: float, history: tuple[float, float, float],
        t: tuple[float, float]) -> None:
    params = (r, alpha, a, b)
    x, t_x, T = history
    t1, t2 = min(t), max(t)
    expected = [float(bgnbd.expected_purchases(params, h, x, t_x, T)) for h in (t1, t2)]
    check_expectations(expected, float(bgnbd.probability_alive(params, x, t_x, T)))
    unconditional = [float(bgnbd.unconditional_expected_purchases(params, h)) for h in (t1, t2)]
    check_expectations(unconditional, 1.0)


@SETTINGS
@given(r=positive(0.01, 10), alpha=positive(0.01, 500), s=positive(0.01, 10), beta=positive(0.01, 500),
       history=histories(), t=horizons)
def test_pareto_predictions_are_probabilities_and_grow_with_the_horizon(
        r: float, alpha: float, s: float, beta: float, history: tuple[float, float, float],
        t: tuple[float, float]) -> None:
    params = (r, alpha, s, beta)
    x, t_x, T = history
    t1, t2 = min(t), max(t)
    expected = [float(paretonbd.expected_purchases(params, h, x, t_x, T)) for h in (t1, t2)]
    check_expectations(expected, float(paretonbd.probability_alive(params, x, t_x, T)))
    unconditional = [float(paretonbd.unconditional_expected_purchases(params, h)) for h in (t1, t2)]
    check_expectations(unconditional, 1.0)


@SETTINGS
@given(r=positive(0.05, 5), alpha=positive(0.1, 100), a=positive(0.05, 5), b=positive(0.05, 10),
       history=histories())
def test_more_recent_activity_never_lowers_p_alive(r: float, alpha: float, a: float, b: float,
                                                   history: tuple[float, float, float]) -> None:
    # Same x and T, a later last purchase: the customer is at least as likely to be alive.
    x, t_x, T = history
    later = (t_x + T) / 2 if x > 0 else t_x
    for model, params in ((bgnbd, (r, alpha, a, b)), (paretonbd, (r, alpha, a, b))):
        assert float(model.probability_alive(params, x, later, T)) >= float(
            model.probability_alive(params, x, t_x, T)) - 1e-12


@SETTINGS
@given(p=positive(0.1, 20), q=positive(1.01, 20), gamma=positive(0.01, 1e5), x=st.integers(1, 500),
       zbar=positive(0.01, 1e6))
def test_expected_order_value_lies_between_the_population_and_the_customer_mean(
        p: float, q: float, gamma: float, x: int, zbar: float) -> None:
    value = float(gammagamma.expected_order_value((p, q, gamma), x, zbar))
    population = p * gamma / (q - 1)
    low, high = min(population, zbar), max(population, zbar)
    assert low * (1 - 1e-12) <= value <= high * (1 + 1e-12)
