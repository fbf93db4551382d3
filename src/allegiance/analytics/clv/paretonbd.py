"""Pareto/NBD: the model of "Counting your customers: who are they and what will they do next?"
(Schmittlein, Morrison & Colombo 1987), in the formulation of Fader & Hardie (2005), "A note on
deriving the Pareto/NBD model and related expressions".

Why: like BG/NBD it estimates, from (x, t_x, T) alone, whether an organization is still buying and
how much it will buy, but drop-out can happen at any moment (exponential lifetime) rather than only
right after a purchase; the two models bracket each other and are compared on holdout data.

Model: while alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha) and its lifetime is
exponential with rate mu ~ Gamma(s, beta). With q = r + s + x the likelihood is

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ 1 / ((alpha+T)^(r+x) (beta+T)^s) + s/q * A0 ]

where, with M = max(alpha, beta) and, if alpha >= beta, c = s + 1, else c = r + x,

    A0 = 2F1(q, c; q+1; |alpha-beta|/(M+t_x)) / (M+t_x)^q - 2F1(q, c; q+1; |alpha-beta|/(M+T)) / (M+T)^q.

Choosing the larger of alpha and beta keeps the 2F1 argument in [0, 1) (the "max trick"); the
whole expression is evaluated in log space (log-sum-exp, log(-expm1)) so customers with many
purchases do not under- or overflow. The Gauss hypergeometric 2F1 has no closed-form derivative
in its parameters, so the gradient is taken by central differences in log-parameter space
(relative step 1e-5, error ~1e-10), on compressed rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, gammaln

from allegiance.analytics.clv._fit import (
    Factor,
    FloatArray,
    IntArray,
    PurchaseModel,
    PurchaseModelFit,
    as_float,
    central_gradient,
    check_rfm,
    compress,
    dot,
    maximise,
    robust_hyp2f1,
)


class ParetoNBDParams(NamedTuple):
    """r, alpha: purchase-rate heterogeneity (Gamma); s, beta: drop-out-rate heterogeneity (Gamma);
    alpha and beta are in the model's time unit."""

    r: float
    alpha: float
    s: float
    beta: float


@dataclass(frozen=True)
class _Pairs:
    """Distinct (x, time) pairs: the 2F1 terms depend on nothing else."""

    x: FloatArray
    t: FloatArray
    index: IntArray

    @classmethod
    def of(cls, x: Factor, t: Factor) -> _Pairs:
        key = x.index.astype(np.int64) * np.int64(t.values.size) + t.index
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return cls(x.values[x.index[first]], t.values[t.index[first]], inverse.reshape(-1).astype(np.intp))


@dataclass(frozen=True)
class _Data:
    x: Factor
    t_x: Factor
    T: Factor
    at_tx: _Pairs
    at_T: _Pairs
    w: FloatArray
    w_x: FloatArray
    total: float


def _prepare(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, weights: ArrayLike | None) -> _Data:
    x, t_x, age, w = check_rfm(frequency, recency, T, weights)
    (fx, ft, fT), wc = compress(x, t_x, age, weights=w)
    return _Data(x=fx, t_x=ft, T=fT, at_tx=_Pairs.of(fx, ft), at_T=_Pairs.of(fx, fT), w=wc, w_x=fx.totals(wc),
                 total=float(wc.sum()))


_RECURRENCE_FROM = 100.0  # scipy's hyp2f1(q, b; q+1; z) is reliable below this q even as z -> 1


def _log_hyp2f1_q(q: FloatArray, b: float, z: FloatArray, y: FloatArray) -> FloatArray:
    """log 2F1(q, b; q+1; z) for b > 0, y = 1 - z given separately (it is computed without
    cancellation by the caller).

    scipy's hyp2f1 fails (NaN) here once q exceeds ~170 and z is close to 1 (its transformation
    to 1 - z needs Gamma(q)); those rows go through :func:`_log_hyp2f1_q_recurrence`."""
    shape = np.shape(z)
    q, z, y = (np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel() for v in (q, z, y))
    with np.errstate(all="ignore"):
        out = np.log(robust_hyp2f1(q, b, q + 1.0, z))
    redo = ~np.isfinite(out) & (q > _RECURRENCE_FROM)
    if np.any(redo):
        out[redo] = _log_hyp2f1_q_recurrence(q[redo], b, z[redo], y[redo])
    return out.reshape(shape)


def _log_hyp2f1_q_recurrence(q: FloatArray, b: float, z: FloatArray, y: FloatArray) -> FloatArray:
    """log 2F1(q, b; q+1; z) (1-D arrays, q > 100) by the exact recurrence in q (from Euler's
    integral and one integration by parts)

        F(q) = q (F(q-1) - y^(1-b)) / (z (q - b)),

    started below q = 100, where scipy is reliable, and run on F y^(b-1) so nothing overflows.
    Each step multiplies the relative error by about (q-1)/(q-b) / z, i.e. barely grows it."""
    steps = np.ceil(q - _RECURRENCE_FROM).astype(np.int64)
    current = q - steps
    with np.errstate(all="ignore"):
        scaled = robust_hyp2f1(current, b, current + 1.0, z) * np.exp((b - 1.0) * np.log(y))
        for k in range(1, int(steps.max(initial=0)) + 1):
            active = steps >= k
            current = np.where(active, current + 1.0, current)
            scaled = np.where(active, current * (scaled - 1.0) / (z * (current - b)), scaled)
        return np.asarray(np.log(scaled) + (1.0 - b) * np.log(y), dtype=np.float64)


def _log_g(params: tuple[float, float, float, float], x: FloatArray, t: FloatArray) -> FloatArray:
    """log(2F1(q, c; q+1; z) / (M+t)^q), z = |alpha-beta|/(M+t), the building block of A0.

    alpha >= beta: c = s + 1 and 2F1 grows at most like (1-z)^(-s): evaluated as is (with the
    recurrence of :func:`_log_hyp2f1_q` where scipy fails).
    alpha < beta: c = r + x, and 2F1 grows like (1-z)^(1-r-x), overflowing for customers with many
    purchases; Euler's transformation 2F1(q, r+x; q+1; z) = (1-z)^(1-r-x) 2F1(1, s+1; q+1; z)
    moves that factor into log space, and the remaining series has positive terms that decrease
    and converge at z = 1."""
    r, alpha, s, beta = params
    q = np.asarray(r + s + x, dtype=np.float64)
    big, small = max(alpha, beta), min(alpha, beta)
    z = abs(alpha - beta) / (big + t)
    y = (small + t) / (big + t)  # 1 - z without cancellation
    if alpha >= beta:
        q, z, y = np.broadcast_arrays(q, z, y)
        log_f = _log_hyp2f1_q(q, s + 1.0, z, y)
    else:
        with np.errstate(divide="ignore"):
            log_f = np.log(robust_hyp2f1(1.0, s + 1.0, q + 1.0, z)) + (1.0 - r - x) * np.log(y)
    return np.asarray(log_f - q * np.log(big + t), dtype=np.float64)


def _log_terms(params: tuple[float, float, float, float], x: FloatArray, t_x: FloatArray, age: FloatArray,
               g_tx: FloatArray, g_T: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(log of the "alive at T" term, log of the "died in (t_x, T]" term) of the bracket in L."""
    r, alpha, s, beta = params
    alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    with np.errstate(divide="ignore"):
        log_a0 = g_tx + np.log(-np.expm1(np.minimum(g_T - g_tx, 0.0)))
    died = np.log(s) - np.log(r + s + x) + log_a0
    return alive, died


def _loglik(params: FloatArray, d: _Data) -> float:
    r, alpha, s, beta = (float(v) for v in params)
    p = (r, alpha, s, beta)
    xs = d.x.values
    ll = dot(d.w_x, gammaln(r + xs)) + d.total * (-gammaln(r) + r * np.log(alpha) + s * np.log(beta))
    # log A0 = log(G(t_x) - G(T)), G evaluated once per distinct (x, t_x) and (x, T) pair.
    g_tx = _log_g(p, d.at_tx.x, d.at_tx.t)[d.at_tx.index]
    g_T = _log_g(p, d.at_T.x, d.at_T.t)[d.at_T.index]
    with np.errstate(divide="ignore"):
        log_a0 = g_tx + np.log(-np.expm1(np.minimum(g_T - g_tx, 0.0)))
    died = (np.log(s) - np.log(r + s + xs))[d.x.index] + log_a0
    alive = -(r + xs)[d.x.index] * np.log(alpha + d.T.values)[d.T.index] - (s * np.log(beta + d.T.values))[d.T.index]
    return ll + dot(d.w, np.logaddexp(alive, died))


def _loglik_and_grad(params: FloatArray, d: _Data) -> tuple[float, FloatArray]:
    with np.errstate(invalid="ignore", over="ignore"):
        return _loglik(params, d), central_gradient(lambda p: _loglik(p, d), params)


def log_likelihood(params: ParetoNBDParams | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike,
                   weights: ArrayLike | None = None) -> float:
    """Total Pareto/NBD log-likelihood of customers (x, t_x, T) at ``params`` (r, alpha, s, beta),
    each row counted ``weights`` times (default once)."""
    return _loglik(as_float(params, "params"), _prepare(frequency, recency, T, weights))


def probability_alive(params: ParetoNBDParams | ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                      T: ArrayLike) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0)."""
    r, alpha, s, beta = (float(v) for v in as_float(params, "params"))
    x, t_x, age = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (frequency, recency, T)))
    p = (r, alpha, s, beta)
    alive, died = _log_terms(p, x, t_x, age, _log_g(p, x, t_x), _log_g(p, x, age))
    return np.asarray(expit(alive - died), dtype=np.float64)


def _one_minus_power_over(k: float, log_base: FloatArray) -> FloatArray:
    """(1 - exp(k log_base)) / k, with its limit -log_base at k = 0."""
    if abs(k) < 1e-12:
        return np.asarray(-log_base, dtype=np.float64)
    return np.asarray(-np.expm1(k * log_base) / k, dtype=np.float64)


def expected_purchases(params: ParetoNBDParams | ArrayLike, t: ArrayLike, frequency: ArrayLike,
                       recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """E[purchases in (T, T + t] | x, t_x, T] =
    (r+x)(beta+T) / ((alpha+T)(s-1)) (1 - ((beta+T)/(beta+T+t))^(s-1)) P(alive), broadcasting."""
    r, alpha, s, beta = (float(v) for v in as_float(params, "params"))
    horizon = np.asarray(t, dtype=np.float64)
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    log_base = -np.log1p(horizon / (beta + age))
    rate_part = (r + x) * (beta + age) / (alpha + age)
    return np.asarray(rate_part * _one_minus_power_over(s - 1.0, log_base)
                      * probability_alive((r, alpha, s, beta), x, t_x, age), dtype=np.float64)


def unconditional_expected_purchases(params: ParetoNBDParams | ArrayLike, t: ArrayLike) -> FloatArray:
    """E[X(t)] = r beta / (alpha (s-1)) (1 - (beta/(beta+t))^(s-1)): purchases of a new customer
    in its first t time units."""
    r, alpha, s, beta = (float(v) for v in as_float(params, "params"))
    horizon = np.asarray(t, dtype=np.float64)
    return np.asarray(r * beta / alpha * _one_minus_power_over(s - 1.0, -np.log1p(horizon / beta)),
                      dtype=np.float64)


class ParetoNBDFit(PurchaseModelFit[ParetoNBDParams]):
    """A fitted Pareto/NBD model; its predictions are this module's functions with its parameters."""

    model = PurchaseModel(probability_alive, expected_purchases, unconditional_expected_purchases)


def fit(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None,
        start: ParetoNBDParams | None = None, max_iterations: int = 1000) -> ParetoNBDFit:
    """Maximum-likelihood Pareto/NBD fit on per-customer (x, t_x, T) arrays in one time unit.

    Identical rows are compressed into weights and the 2F1 terms are evaluated once per distinct
    (x, t_x) and (x, T) pair; L-BFGS-B on log(r, alpha, s, beta)."""
    data = _prepare(frequency, recency, T, weights)
    if start is None:
        x_mean = dot(data.w_x, data.x.values) / data.total
        t_mean = dot(data.T.values[data.T.index], data.w) / data.total
        start = ParetoNBDParams(1.0, max(t_mean, 1e-6) / max(x_mean, 0.1), 1.0, max(t_mean, 1e-6))
    opt = maximise(lambda p: _loglik_and_grad(p, data), np.asarray(start, dtype=np.float64), data.total,
                   max_iterations=max_iterations, gtol=1e-8)
    return ParetoNBDFit(params=ParetoNBDParams(*(float(v) for v in opt.params)), log_likelihood=opt.log_likelihood,
                        n=round(data.total), converged=opt.converged, iterations=opt.iterations,
                        distinct_rows=int(data.w.size))
