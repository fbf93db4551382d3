"""BG/NBD: the beta-geometric / negative binomial model of repeat buying (Fader, Hardie & Lee 2005,
"Counting your customers the easy way").

Why: it turns each organization's purchase history (x repeat purchases, the last at t_x, observed
for T) into the probability that it still buys from the program and the number of purchases to
expect from it, without labels of who has churned.

Model: while alive, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after every repeat
purchase it drops out with probability p ~ Beta(a, b). The likelihood of one customer is

    L = B(a, b + x) / B(a, b) * Gamma(r + x) alpha^r / (Gamma(r) (alpha + T)^(r + x))
        + 1[x > 0] * B(a + 1, b + x - 1) / B(a, b) * Gamma(r + x) alpha^r / (Gamma(r) (alpha + t_x)^(r + x))

and the fit maximises the sum of log L over customers (weights = counts of identical rows) with
an analytic gradient, L-BFGS-B on log-parameters. Inputs are the ``frequency``/``recency``/``T``
columns of :func:`allegiance.analytics.clv.summary.rfm_summary` as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, expit, gammaln

from allegiance.analytics.clv._fit import (
    Factor,
    FloatArray,
    PurchaseModel,
    PurchaseModelFit,
    as_float,
    check_rfm,
    compress,
    dot,
    maximise,
    robust_hyp2f1,
)


class BGNBDParams(NamedTuple):
    """r, alpha: purchase-rate heterogeneity (Gamma shape, rate in the model's time unit);
    a, b: drop-out probability heterogeneity (Beta)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class _Data:
    x: Factor
    t_x: Factor
    T: Factor
    w: FloatArray
    w_x: FloatArray  # total weight per distinct x
    repeat: FloatArray  # 1.0 where x > 0
    total: float


def _prepare(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None) -> _Data:
    x, t_x, age, w = check_rfm(frequency, recency, T, weights)
    (fx, ft, fT), wc = compress(x, t_x, age, weights=w)
    return _Data(x=fx, t_x=ft, T=fT, w=wc, w_x=fx.totals(wc), repeat=(fx.values[fx.index] > 0).astype(np.float64),
                 total=float(wc.sum()))


def _loglik_and_grad(params: FloatArray, d: _Data, *, gradient: bool = True) -> tuple[float, FloatArray]:
    r, alpha, a, b = (float(v) for v in params)
    xs = d.x.values
    rx_u = r + xs
    log_b_x1_u = np.log(np.where(xs > 0, b + xs - 1, 1.0))
    # Terms that depend on x only: evaluated once per distinct x, weighted by its customer count.
    per_x = gammaln(rx_u) + gammaln(b + xs) - gammaln(a + b + xs)
    ll = dot(d.w_x, per_x) + d.total * (r * np.log(alpha) - gammaln(r) + gammaln(a + b) - gammaln(b))
    # Row terms: log(exp(A3) + 1[x>0] exp(A4)) = A3 + log1p(exp(A4 - A3)).
    rx = rx_u[d.x.index]
    log_aT_u = np.log(alpha + d.T.values)
    log_atx_u = np.log(alpha + d.t_x.values)
    log_aT = log_aT_u[d.T.index]
    log_atx = log_atx_u[d.t_x.index]
    a3 = -rx * log_aT
    diff = np.where(d.repeat > 0, np.log(a) - log_b_x1_u[d.x.index] - rx * (log_atx - log_aT), -np.inf)
    ll += dot(d.w, a3 + np.logaddexp(0.0, diff))
    if not gradient:
        return ll, np.empty(0)
    p4 = expit(diff)  # posterior weight of the "dropped out after t_x" branch
    p3 = 1.0 - p4
    wp3, wp4 = d.w * p3, d.w * p4
    dig_abx = digamma(a + b + xs)
    d_r = dot(d.w_x, digamma(rx_u)) + d.total * (np.log(alpha) - digamma(r)) - (dot(wp3, log_aT) + dot(wp4, log_atx))
    d_alpha = d.total * r / alpha - (dot(wp3 * rx, (1.0 / (alpha + d.T.values))[d.T.index])
                                    + dot(wp4 * rx, (1.0 / (alpha + d.t_x.values))[d.t_x.index]))
    d_a = d.total * digamma(a + b) - dot(d.w_x, dig_abx) + float(wp4.sum()) / a
    inv_b_x1 = np.where(xs > 0, 1.0 / np.where(xs > 0, b + xs - 1, 1.0), 0.0)
    d_b = (d.total * (digamma(a + b) - digamma(b)) + dot(d.w_x, digamma(b + xs) - dig_abx)
           - dot(wp4, inv_b_x1[d.x.index]))
    return ll, np.array([d_r, d_alpha, d_a, d_b])


def log_likelihood(params: BGNBDParams | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike,
                   weights: ArrayLike | None = None) -> float:
    """Total BG/NBD log-likelihood of customers (x = ``frequency``, t_x = ``recency``, ``T``) at
    ``params`` (r, alpha, a, b), each row counted ``weights`` times (default once)."""
    return _loglik_and_grad(as_float(params, "params"), _prepare(frequency, recency, T, weights), gradient=False)[0]


def log_likelihood_gradient(params: BGNBDParams | ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                            T: ArrayLike, weights: ArrayLike | None = None) -> FloatArray:
    """Analytic gradient of :func:`log_likelihood` with respect to (r, alpha, a, b)."""
    return _loglik_and_grad(as_float(params, "params"), _prepare(frequency, recency, T, weights))[1]


def probability_alive(params: BGNBDParams | ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                      T: ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + 1[x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    Customers without repeat purchases are alive with probability 1: in BG/NBD drop-out can only
    happen right after a repeat purchase."""
    r, alpha, a, b = (float(v) for v in as_float(params, "params"))
    x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    return np.asarray(np.where(x > 0, expit(-log_odds), 1.0), dtype=np.float64)


def _one_minus_h_over(a: float, z: FloatArray, hyp: FloatArray) -> FloatArray:
    """(1 - (1-z)^(a-1) hyp) / (a - 1), accurate when a is close to 1 (both factors of the
    difference are then close to 1, and log space keeps the difference exact)."""
    power = (a - 1.0) * np.log1p(-z)
    with np.errstate(over="ignore", invalid="ignore"):
        via_log = -np.expm1(power + np.log(np.where(hyp > 0, hyp, 1.0)))
        direct = 1.0 - np.exp(power) * hyp
    return np.asarray(np.where(hyp > 0, via_log, direct) / (a - 1.0), dtype=np.float64)


def _off_singularities(params: BGNBDParams | ArrayLike) -> tuple[float, float, float, float]:
    """(r, alpha, a, b) moved off a = 1 and a + b = 1 by 1e-8: both are removable singularities of
    the expectation formulas (0/0 and 0 * pole), and the function is smooth across them."""
    r, alpha, a, b = (float(v) for v in as_float(params, "params"))
    if abs(a - 1.0) < 1e-8:
        a = 1.0 + 1e-8
    if abs(a + b - 1.0) < 1e-8:
        b = 1.0 - a + 1e-8
    return r, alpha, a, b


def expected_purchases(params: BGNBDParams | ArrayLike, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                       T: ArrayLike) -> FloatArray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10), broadcasting over all inputs.

    Computed as (a+b+x-1)/(a-1) (1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)) P(alive),
    z = t / (alpha + T + t): the Euler transform of the published
    1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z), which stays well conditioned
    for customers with many purchases."""
    r, alpha, a, b = _off_singularities(params)
    horizon = np.asarray(t, dtype=np.float64)
    x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    z = horizon / (alpha + age + horizon)
    hyp = robust_hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    expected = (a + b + x - 1.0) * _one_minus_h_over(a, z, hyp) * probability_alive((r, alpha, a, b), x, t_x, age)
    return np.maximum(expected, 0.0)  # exact value >= 0; rounding can leave -1e-70


def unconditional_expected_purchases(params: BGNBDParams | ArrayLike, t: ArrayLike) -> FloatArray:
    """E[X(t)]: repeat purchases a new customer makes in its first t time units (FHL 2005 eq. 9),
    (a+b-1)/(a-1) (1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t)))."""
    r, alpha, a, b = _off_singularities(params)
    horizon = np.asarray(t, dtype=np.float64)
    z = horizon / (alpha + horizon)
    hyp = robust_hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, z)
    return np.maximum((a + b - 1.0) * _one_minus_h_over(a, z, hyp), 0.0)


class BGNBDFit(PurchaseModelFit[BGNBDParams]):
    """A fitted BG/NBD model; its predictions are this module's functions with its parameters."""

    model = PurchaseModel(probability_alive, expected_purchases, unconditional_expected_purchases)


def fit(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None,
        start: BGNBDParams | None = None, max_iterations: int = 1000) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit on per-customer (x, t_x, T) arrays in one time unit.

    Identical rows are compressed into weights first; the optimiser is L-BFGS-B on
    log(r, alpha, a, b) with the analytic gradient. ``weights`` counts customers per row (for
    pre-aggregated input). Parameters come out in the time unit of the inputs (alpha scales with
    it)."""
    data = _prepare(frequency, recency, T, weights)
    if start is None:
        x_mean = dot(data.w_x, data.x.values) / data.total
        t_mean = dot(data.T.values[data.T.index], data.w) / data.total
        start = BGNBDParams(1.0, max(t_mean, 1e-6) / max(x_mean, 0.1), 1.0, 1.0)
    opt = maximise(lambda p: _loglik_and_grad(p, data), np.asarray(start, dtype=np.float64), data.total,
                   max_iterations=max_iterations)
    return BGNBDFit(params=BGNBDParams(*(float(v) for v in opt.params)), log_likelihood=opt.log_likelihood,
                    n=round(data.total), converged=opt.converged, iterations=opt.iterations,
                    distinct_rows=int(data.w.size))
