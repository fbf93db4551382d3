"""BG/NBD, Pareto/NBD and Gamma-Gamma: likelihoods checked against independent computations,
parameters recovered from populations simulated with known values, and predictions checked
against what the simulated customers actually did next."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import betaln, gammaln, hyp2f1

from allegiance.analytics.clv import bgnbd, gammagamma, paretonbd
from allegiance.analytics.clv.simulate import (
    on_day_grid,
    simulate_bgnbd,
    simulate_gammagamma,
    simulate_paretonbd,
)

BG_TRUE = (0.25, 4.0, 0.8, 2.5)
PARETO_TRUE = (0.55, 10.0, 0.6, 12.0)
GG_TRUE = (6.0, 3.7, 15.0)


def log_standard_errors(loglik: Callable[[np.ndarray], float], params: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Standard errors of log(params) from the observed information (central-difference Hessian of
    the log-likelihood in log-parameter space)."""
    k = params.size
    theta = np.log(params)

    def f(t: np.ndarray) -> float:
        return loglik(np.exp(t))

    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * step, np.eye(k)[j] * step
            hessian[i, j] = hessian[j, i] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej)
                                             + f(theta - ei - ej)) / (4 * step * step)
    return np.sqrt(np.diag(np.linalg.inv(-hessian)))


def assert_recovered(fitted: tuple[float, ...], true: tuple[float, ...], se_log: np.ndarray,
                     max_relative: tuple[float, ...]) -> None:
    """Each estimate within 4 standard errors of the truth, and the design informative enough that
    the truth is pinned down to ``max_relative``."""
    error = np.log(np.asarray(fitted)) - np.log(np.asarray(true))
    assert np.all(np.abs(error) <= 4 * se_log), (fitted, true, se_log)
    assert np.all(4 * se_log <= np.asarray(max_relative)), se_log
    assert np.all(np.abs(np.asarray(fitted) / np.asarray(true) - 1) <= np.asarray(max_relative)), fitted


# --- BG/NBD -------------------------------------------------------------------------------


def bgnbd_loglik_direct(params: tuple[float, ...], x: float, t_x: float, T: float) -> float:
    """FHL 2005 eq. (6), written out with Beta functions."""
    r, alpha, a, b = params
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    first = betaln(a, b + x) - betaln(a, b) + head - (r + x) * np.log(alpha + T)
    if x == 0:
        return float(first)
    second = betaln(a + 1, b + x - 1) - betaln(a, b) + head - (r + x) * np.log(alpha + t_x)
    return float(np.logaddexp(first, second))


def test_bgnbd_log_likelihood_matches_the_published_formula() -> None:
    x = np.array([0, 1, 2, 7, 30])
    t_x = np.array([0.0, 3.5, 20.0, 31.0, 38.0])
    T = np.array([10.0, 38.0, 38.0, 39.0, 39.0])
    params = (0.4, 6.0, 1.3, 2.2)
    expected = sum(bgnbd_loglik_direct(params, *row) for row in zip(x, t_x, T, strict=True))
    assert bgnbd.log_likelihood(params, x, t_x, T) == pytest.approx(expected, rel=1e-12)
    # Weights count rows: the same as repeating them.
    w = np.array([3, 1, 2, 1, 5])
    assert bgnbd.log_likelihood(params, x, t_x, T, weights=w) == pytest.approx(
        bgnbd.log_likelihood(params, np.repeat(x, w), np.repeat(t_x, w), np.repeat(T, w)), rel=1e-12)


@pytest.mark.parametrize("params", [(0.25, 4.0, 0.8, 2.5), (2.0, 0.5, 3.0, 0.7), (0.05, 40.0, 0.2, 9.0)])
def test_bgnbd_gradient_is_the_derivative_of_the_likelihood(params: tuple[float, ...]) -> None:
    rng = np.random.default_rng(5)
    sim = simulate_bgnbd(500, *BG_TRUE, T=rng.uniform(5, 40, 500), rng=rng)
    p = np.array(params)
    analytic = bgnbd.log_likelihood_gradient(p, *sim[:3])
    numeric = [(bgnbd.log_likelihood(p + h, *sim[:3]) - bgnbd.log_likelihood(p - h, *sim[:3])) / (2 * h.max())
               for h in np.eye(4) * p * 1e-6]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-4)


def test_bgnbd_recovers_simulated_parameters() -> None:
    n = 40_000
    rng = np.random.default_rng(2024)
    sim = simulate_bgnbd(n, *BG_TRUE, T=rng.uniform(39, 78, n), rng=rng)
    fit = bgnbd.fit(*sim[:3])
    assert fit.converged and fit.n == n
    # The maximum is a maximum: no worse than the truth.
    assert fit.log_likelihood >= bgnbd.log_likelihood(BG_TRUE, *sim[:3])
    data = bgnbd._prepare(*sim[:3], None)
    se = log_standard_errors(lambda p: bgnbd._loglik_and_grad(p, data, gradient=False)[0], np.array(fit.params))
    assert_recovered(fit.params, BG_TRUE, se, (0.05, 0.1, 0.15, 0.2))


def test_bgnbd_on_a_day_grid_compresses_and_still_recovers() -> None:
    n = 50_000
    rng = np.random.default_rng(11)
    # Times in weeks at day resolution, as summary.py reports them; a one-quarter cohort.
    sim = on_day_grid(simulate_bgnbd(n, *BG_TRUE, T=52 - rng.integers(0, 91, n) / 7, rng=rng), days_per_unit=7)
    fit = bgnbd.fit(*sim[:3])
    assert fit.distinct_rows < n / 2
    np.testing.assert_allclose(fit.params, BG_TRUE, rtol=0.2)


def test_bgnbd_predictions_match_what_simulated_customers_did_next() -> None:
    n = 60_000
    rng = np.random.default_rng(7)
    sim = simulate_bgnbd(n, *BG_TRUE, T=rng.uniform(20, 52, n), rng=rng, holdout=39.0)
    assert sim.holdout_frequency is not None and sim.alive is not None
    predicted = bgnbd.expected_purchases(BG_TRUE, 39.0, *sim[:3])
    alive = bgnbd.probability_alive(BG_TRUE, *sim[:3])
    assert predicted.sum() == pytest.approx(sim.holdout_frequency.sum(), rel=0.03)
    assert alive.mean() == pytest.approx(sim.alive.mean(), abs=0.01)
    for x in (0, 1, 3):  # by purchase history: calibrated within groups too
        group = sim.frequency == x
        assert predicted[group].mean() == pytest.approx(sim.holdout_frequency[group].mean(), rel=0.06)
        assert alive[group].mean() == pytest.approx(sim.alive[group].mean(), abs=0.02)
    # A new customer's first 39 weeks: the unconditional expectation.
    fresh = simulate_bgnbd(n, *BG_TRUE, T=39.0, rng=rng)
    assert bgnbd.unconditional_expected_purchases(BG_TRUE, 39.0) == pytest.approx(fresh.frequency.mean(), rel=0.03)


def test_bgnbd_expectation_equals_the_published_hypergeometric_form() -> None:
    r, alpha, a, b = 0.4, 6.0, 1.7, 2.2
    x, t_x, T, t = np.array([0, 1, 4]), np.array([0.0, 5.0, 30.0]), np.array([20.0, 38.0, 39.0]), 26.0
    z = t / (alpha + T + t)
    published = ((a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
                                              * hyp2f1(r + x, b + x, a + b + x - 1, z))
                 / (1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)))
    np.testing.assert_allclose(bgnbd.expected_purchases((r, alpha, a, b), t, x, t_x, T), published, rtol=1e-10)
    unconditional = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    assert bgnbd.unconditional_expected_purchases((r, alpha, a, b), t) == pytest.approx(unconditional, rel=1e-10)
    # a = 1 and a + b = 1 are removable singularities of the formulas.
    near = [bgnbd.expected_purchases((r, alpha, 1 + e, b), t, 2, 10.0, 30.0) for e in (-1e-6, 0.0, 1e-6)]
    assert near[1] == pytest.approx(near[0], rel=1e-5) and near[1] == pytest.approx(near[2], rel=1e-5)
    near = [bgnbd.unconditional_expected_purchases((r, alpha, 0.5, 0.5 + e), t) for e in (-1e-6, 0.0, 1e-6)]
    assert near[1] == pytest.approx(near[0], rel=1e-5) and near[1] == pytest.approx(near[2], rel=1e-5)
    near = [bgnbd.expected_purchases((r, alpha, 0.5, 0.5 + e), t, 0, 0.0, 30.0) for e in (-1e-6, 0.0, 1e-6)]
    assert near[1] == pytest.approx(near[0], rel=1e-5) and near[1] == pytest.approx(near[2], rel=1e-5)


# --- Pareto/NBD ---------------------------------------------------------------------------


def pareto_loglik_by_quadrature(params: tuple[float, ...], x: int, t_x: float, T: float) -> float:
    """Integrate over the death time: L = E[lambda^x e^-lambda T] P(alive at T)
    + int_{t_x}^T E[lambda^x e^-lambda tau] f(tau) dtau, with the Gamma mixtures in closed form."""
    r, alpha, s, beta = params
    head = np.exp(gammaln(r + x) - gammaln(r)) * alpha**r * beta**s
    integral, _ = quad(lambda tau: (alpha + tau) ** -(r + x) * s * (beta + tau) ** -(s + 1), t_x, T,
                       epsabs=0, epsrel=1e-13)
    return float(np.log(head * ((alpha + T) ** -(r + x) * (beta + T) ** -s + integral)))


@pytest.mark.parametrize("params", [(0.55, 10.0, 0.6, 12.0), (0.55, 12.0, 0.6, 10.0), (1.5, 3.0, 2.0, 3.0),
                                    (0.3, 50.0, 0.9, 2.0)])
def test_pareto_log_likelihood_matches_numerical_integration(params: tuple[float, ...]) -> None:
    # Both branches of the max(alpha, beta) trick, equal alpha and beta, many purchases.
    rows = [(0, 0.0, 39.0), (1, 2.0, 39.0), (3, 38.9, 39.0), (12, 20.0, 30.0), (40, 35.0, 39.0), (2, 10.0, 10.0)]
    for x, t_x, T in rows:
        assert paretonbd.log_likelihood(params, [x], [t_x], [T]) == pytest.approx(
            pareto_loglik_by_quadrature(params, x, t_x, T), rel=1e-9, abs=1e-9)


def test_pareto_hypergeometric_beyond_where_scipy_fails() -> None:
    # 2F1(q, b; q+1; z) for q > 170 and z near 1, where scipy returns NaN: the recurrence in q.
    # Reference: the series q sum_k (b)_k / k! z^k / (q + k), positive terms, summed in full.
    for q, b, y in [(250.3, 1.6, 1e-3), (1200.7, 4.0, 3e-4), (180.2, 1.01, 5e-3), (600.0, 2.0, 1e-3)]:
        z = 1 - y
        k = np.arange(int(45 / y) + 1000, dtype=float)
        log_terms = gammaln(b + k) - gammaln(b) - gammaln(k + 1) + k * np.log(z) + np.log(q) - np.log(q + k)
        top = log_terms.max()
        reference = top + np.log(np.exp(log_terms - top).sum())
        recurrence = paretonbd._log_hyp2f1_q_recurrence(np.array([q]), b, np.array([z]), np.array([y]))[0]
        assert recurrence == pytest.approx(reference, rel=1e-7)
        # And whichever path the public evaluation takes.
        assert paretonbd._log_hyp2f1_q(np.array([q]), b, np.array([z]), np.array([y]))[0] == pytest.approx(
            reference, rel=1e-7)


def test_pareto_extreme_customers_stay_finite() -> None:
    # alpha >> beta and 250 purchases soon after the first: both branches of the max trick at
    # arguments close to 1, checked against integrating the likelihood (in log scale).
    r, alpha, s, beta = 0.5, 500.0, 0.5, 0.1
    x, t_x, T = 250, 0.05, 1.0
    log_head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    shift = (r + x) * np.log(alpha + t_x)  # integrand scaled by (alpha + t_x)^(r + x)
    integral, _ = quad(lambda tau: np.exp(shift - (r + x) * np.log(alpha + tau)) * s * (beta + tau) ** -(s + 1),
                       t_x, T, epsabs=0, epsrel=1e-12)
    alive = np.exp(shift - (r + x) * np.log(alpha + T) - s * np.log(beta + T))
    expected = log_head - shift + np.log(alive + integral)
    assert paretonbd.log_likelihood((r, alpha, s, beta), [x], [t_x], [T]) == pytest.approx(expected, rel=1e-9)
    swapped = (r, 0.1, s, 500.0)
    p_alive = paretonbd.probability_alive(swapped, x, t_x, T)
    assert np.isfinite(p_alive) and 0 <= p_alive <= 1
    assert np.isfinite(paretonbd.expected_purchases(swapped, 52.0, x, t_x, T))


def test_pareto_recovers_simulated_parameters() -> None:
    n = 20_000
    rng = np.random.default_rng(99)
    sim = simulate_paretonbd(n, *PARETO_TRUE, T=rng.uniform(39, 78, n), rng=rng)
    fit = paretonbd.fit(*sim[:3])
    assert fit.converged
    assert fit.log_likelihood >= paretonbd.log_likelihood(PARETO_TRUE, *sim[:3])
    data = paretonbd._prepare(*sim[:3], None)
    se = log_standard_errors(lambda p: paretonbd._loglik(p, data), np.array(fit.params))
    assert_recovered(fit.params, PARETO_TRUE, se, (0.15, 0.15, 0.3, 0.5))


def test_pareto_predictions_match_what_simulated_customers_did_next() -> None:
    n = 60_000
    rng = np.random.default_rng(8)
    sim = simulate_paretonbd(n, *PARETO_TRUE, T=rng.uniform(20, 52, n), rng=rng, holdout=39.0)
    assert sim.holdout_frequency is not None and sim.alive is not None
    predicted = paretonbd.expected_purchases(PARETO_TRUE, 39.0, *sim[:3])
    alive = paretonbd.probability_alive(PARETO_TRUE, *sim[:3])
    assert predicted.sum() == pytest.approx(sim.holdout_frequency.sum(), rel=0.03)
    assert alive.mean() == pytest.approx(sim.alive.mean(), abs=0.01)
    for x in (0, 1, 3):
        group = sim.frequency == x
        assert predicted[group].mean() == pytest.approx(sim.holdout_frequency[group].mean(), rel=0.06)
        assert alive[group].mean() == pytest.approx(sim.alive[group].mean(), abs=0.02)
    fresh = simulate_paretonbd(n, *PARETO_TRUE, T=39.0, rng=rng)
    assert paretonbd.unconditional_expected_purchases(PARETO_TRUE, 39.0) == pytest.approx(fresh.frequency.mean(),
                                                                                         rel=0.03)
    # s = 1 is a removable singularity of the expectation.
    near = [paretonbd.expected_purchases((0.5, 10.0, 1 + e, 12.0), 20.0, 2, 10.0, 30.0) for e in (-1e-7, 0.0, 1e-7)]
    assert near[1] == pytest.approx(near[0], rel=1e-5) and near[1] == pytest.approx(near[2], rel=1e-5)


# --- Gamma-Gamma --------------------------------------------------------------------------


def test_gamma_gamma_likelihood_and_gradient() -> None:
    x, zbar = np.array([1, 2, 5]), np.array([10.0, 35.0, 20.0])
    p, q, g = 6.0, 3.7, 15.0
    direct = sum(gammaln(p * xi + q) - gammaln(p * xi) - gammaln(q) + q * np.log(g) + (p * xi - 1) * np.log(zi)
                 + p * xi * np.log(xi) - (p * xi + q) * np.log(g + xi * zi) for xi, zi in zip(x, zbar, strict=True))
    assert gammagamma.log_likelihood((p, q, g), x, zbar) == pytest.approx(direct, rel=1e-12)
    params = np.array([p, q, g])
    analytic = gammagamma.log_likelihood_gradient(params, x, zbar)
    numeric = [(gammagamma.log_likelihood(params + h, x, zbar) - gammagamma.log_likelihood(params - h, x, zbar))
               / (2 * h.max()) for h in np.eye(3) * params * 1e-6]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)
    with pytest.raises(ValueError, match="frequency > 0"):
        gammagamma.fit([0, 1], [0.0, 10.0])


def test_gamma_gamma_recovers_simulated_parameters_and_its_expectation_is_unbiased() -> None:
    n = 30_000
    rng = np.random.default_rng(3)
    x = rng.integers(1, 12, n).astype(float)
    zbar = simulate_gammagamma(x, *GG_TRUE, rng=rng)
    fit = gammagamma.fit(x, zbar)
    assert fit.converged
    assert fit.log_likelihood >= gammagamma.log_likelihood(GG_TRUE, x, zbar)
    data = gammagamma._prepare(x, zbar, None)
    se = log_standard_errors(lambda p: gammagamma._loglik_and_grad(p, data)[0], np.array(fit.params))
    assert_recovered(fit.params, GG_TRUE, se, (0.25, 0.1, 0.25))
    # E[value of a new order | history] is unbiased: draw one more order per customer with the
    # same latent rate (regenerated with the same seed) and compare the means.
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    nu = rng_a.gamma(GG_TRUE[1], 1 / GG_TRUE[2], n)
    zbar = rng_a.gamma(GG_TRUE[0] * x, 1 / (nu * x))
    assert np.allclose(zbar, simulate_gammagamma(x, *GG_TRUE, rng=rng_b))
    next_order = rng_a.gamma(GG_TRUE[0], 1 / nu)
    expected = gammagamma.expected_order_value(GG_TRUE, x, zbar)
    assert expected.mean() == pytest.approx(next_order.mean(), rel=0.02)
