"""Spend per purchase (Gamma-Gamma, Fader & Hardie 2005 note "The Gamma-Gamma model of monetary
value"), and lifetime value: expected purchases (BG/NBD or Pareto/NBD) times expected order value,
discounted; plus realised (historical) value.

Why: the purchase models say how many orders an organization will place; the spend model says what
each will be worth, shrinking a customer's own mean order value towards the population mean the
fewer orders it is based on. Their product, discounted month by month, is the expected value of the
relationship over a horizon.

Gamma-Gamma: a customer's order values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across customers
(so its mean order value p/nu varies, the coefficient of variation within a customer is constant).
For a customer with x repeat purchases of mean value zbar the likelihood is

    L = Gamma(p x + q) / (Gamma(p x) Gamma(q)) gamma^q zbar^(p x - 1) x^(p x) / (gamma + x zbar)^(p x + q)

and the conditional expected order value is p (gamma + x zbar) / (p x + q - 1), a weighted mean of
the population mean p gamma / (q - 1) and zbar. Fitted on customers with x > 0 and zbar > 0.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from allegiance.analytics.clv._fit import Factor, FloatArray, as_float, compress, dot, maximise
from allegiance.analytics.clv.summary import DAYS_PER_UNIT, TimeUnit, utc_day

DAYS_PER_MONTH = 365.25 / 12


class GammaGammaParams(NamedTuple):
    """p: shape of order values within a customer; q, gamma: Gamma heterogeneity of their rate
    (gamma is in the currency unit of the monetary values)."""

    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class _Data:
    x: Factor
    log_x: FloatArray
    zbar: FloatArray
    log_zbar: FloatArray
    w: FloatArray
    w_x: FloatArray
    total: float


def _prepare(frequency: ArrayLike, monetary: ArrayLike, weights: ArrayLike | None) -> _Data:
    x, zbar = as_float(frequency, "frequency"), as_float(monetary, "monetary")
    if x.shape != zbar.shape:
        raise ValueError("frequency and monetary must have the same length")
    w = np.ones_like(x) if weights is None else as_float(weights, "weights")
    if np.any(x <= 0) or np.any(zbar <= 0):
        raise ValueError("the Gamma-Gamma model is fitted on customers with frequency > 0 and monetary > 0")
    (fx, fz), wc = compress(x, zbar, weights=w)
    z = fz.values[fz.index]
    return _Data(x=fx, log_x=np.log(fx.values), zbar=z, log_zbar=np.log(z), w=wc, w_x=fx.totals(wc),
                 total=float(wc.sum()))


def _loglik_and_grad(params: FloatArray, d: _Data) -> tuple[float, FloatArray]:
    p, q, gamma = (float(v) for v in params)
    xs = d.x.values
    px_u = p * xs
    x = xs[d.x.index]
    px = px_u[d.x.index]
    log_gz = np.log(gamma + x * d.zbar)
    ll = (dot(d.w_x, gammaln(px_u + q) - gammaln(px_u) + px_u * d.log_x) + d.total * (q * np.log(gamma) - gammaln(q))
          + dot(d.w, (px - 1.0) * d.log_zbar - (px + q) * log_gz))
    d_p = (dot(d.w_x, xs * (digamma(px_u + q) - digamma(px_u) + d.log_x))
           + dot(d.w, x * (d.log_zbar - log_gz)))
    d_q = dot(d.w_x, digamma(px_u + q)) + d.total * (np.log(gamma) - digamma(q)) - dot(d.w, log_gz)
    d_gamma = d.total * q / gamma - dot(d.w, (px + q) / (gamma + x * d.zbar))
    return ll, np.array([d_p, d_q, d_gamma])


def log_likelihood(params: GammaGammaParams | ArrayLike, frequency: ArrayLike, monetary: ArrayLike,
                   weights: ArrayLike | None = None) -> float:
    """Total Gamma-Gamma log-likelihood of customers with x = ``frequency`` > 0 repeat purchases of
    mean value ``monetary`` > 0."""
    return _loglik_and_grad(as_float(params, "params"), _prepare(frequency, monetary, weights))[0]


def log_likelihood_gradient(params: GammaGammaParams | ArrayLike, frequency: ArrayLike, monetary: ArrayLike,
                            weights: ArrayLike | None = None) -> FloatArray:
    """Analytic gradient of :func:`log_likelihood` with respect to (p, q, gamma)."""
    return _loglik_and_grad(as_float(params, "params"), _prepare(frequency, monetary, weights))[1]


def expected_order_value(params: GammaGammaParams | ArrayLike, frequency: ArrayLike,
                         monetary: ArrayLike) -> FloatArray:
    """E[order value | x, zbar] = p (gamma + x zbar) / (p x + q - 1), broadcasting; for x = 0 this
    is the population mean p gamma / (q - 1) (NaN when q <= 1: that mean does not exist)."""
    p, q, gamma = (float(v) for v in as_float(params, "params"))
    x = np.asarray(frequency, dtype=np.float64)
    zbar = np.where(x > 0, np.asarray(monetary, dtype=np.float64), 0.0)
    denominator = p * x + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = p * (gamma + x * zbar) / denominator
    return np.asarray(np.where(denominator > 0, value, np.nan), dtype=np.float64)


@dataclass(frozen=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma spend model: parameters, maximised log-likelihood, customers used
    (those with x > 0), convergence."""

    params: GammaGammaParams
    log_likelihood: float
    n: int
    converged: bool
    iterations: int = 0

    @property
    def population_mean(self) -> float:
        """Mean order value of a customer drawn at random: p gamma / (q - 1) (NaN if q <= 1)."""
        p, q, gamma = self.params
        return p * gamma / (q - 1.0) if q > 1.0 else math.nan

    def expected_order_value(self, frequency: ArrayLike, monetary: ArrayLike) -> FloatArray:
        """See :func:`expected_order_value`."""
        return expected_order_value(self.params, frequency, monetary)


def fit(frequency: ArrayLike, monetary: ArrayLike, *, weights: ArrayLike | None = None,
        start: GammaGammaParams | None = None, max_iterations: int = 1000) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit on repeat buyers (x > 0) with mean repeat order value
    ``monetary`` > 0 (filter the RFM summary first); L-BFGS-B on log(p, q, gamma), analytic
    gradient."""
    data = _prepare(frequency, monetary, weights)
    if start is None:
        start = GammaGammaParams(1.0, 2.0, dot(data.w, data.zbar) / data.total)
    opt = maximise(lambda prm: _loglik_and_grad(prm, data), np.asarray(start, dtype=np.float64), data.total,
                   max_iterations=max_iterations)
    return GammaGammaFit(params=GammaGammaParams(*(float(v) for v in opt.params)), log_likelihood=opt.log_likelihood,
                         n=round(data.total), converged=opt.converged, iterations=opt.iterations)


class PurchaseModel(Protocol):
    """A fitted BG/NBD or Pareto/NBD model."""

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                           T: ArrayLike) -> FloatArray: ...


def customer_lifetime_value(purchases: PurchaseModel, spend: GammaGammaFit, frequency: ArrayLike,
                            recency: ArrayLike, T: ArrayLike, monetary: ArrayLike, *, horizon: float,
                            time_unit: TimeUnit = "days", discount_rate: float = 0.01,
                            margin: float = 1.0) -> FloatArray:
    """Discounted expected value of each customer over the next ``horizon`` time units.

    CLV = margin * E[order value] * sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) / (1 + d)^(t_k / month)

    with t_k = min(k months, horizon) (a month is 365.25/12 days, the last step may be partial),
    E[Y(t)] the purchase model's conditional expected purchases in (T, T + t], and d the monthly
    ``discount_rate``. Inputs are RFM arrays in ``time_unit`` (``monetary`` in the currency unit of
    ``spend``); returns one value per customer in that currency unit.
    """
    if horizon < 0:
        raise ValueError("horizon must be non-negative")
    if discount_rate <= -1:
        raise ValueError("discount_rate must be > -1")
    x, t_x, age = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    month = DAYS_PER_MONTH / DAYS_PER_UNIT[time_unit]
    steps = max(1, math.ceil(horizon / month - 1e-9))
    bounds = np.minimum(np.arange(1, steps + 1) * month, horizon)
    cumulative = purchases.expected_purchases(bounds[:, None], x[None, :], t_x[None, :], age[None, :])
    increments = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + discount_rate) ** (-(bounds / month))
    expected_discounted_purchases = np.sum(discount[:, None] * increments, axis=0)
    return np.asarray(margin * spend.expected_order_value(x, monetary) * expected_discounted_purchases,
                      dtype=np.float64)


def historical_clv(orders: pl.DataFrame, returns: pl.DataFrame, *, margin: float = 1.0,
                   until: dt.date | dt.datetime | None = None) -> pl.DataFrame:
    """Realised value per organization: (orders minus returns) times ``margin``.

    Expects the ``orders`` and ``returns`` frames (``org``, ``occurred_at``, ``amount_minor``);
    ``until`` keeps events on or before that UTC day. Returns ``org``, ``revenue_minor``,
    ``returned_minor``, ``net_minor`` (int64) and ``historical_clv`` (float, minor units), one row
    per org with an order or a return, sorted by org.
    """
    def totals(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        lazy = frame.lazy()
        if until is not None:
            lazy = lazy.filter(pl.col("occurred_at").dt.convert_time_zone("UTC").dt.date() <= utc_day(until))
        return lazy.group_by("org").agg(pl.col("amount_minor").sum().cast(pl.Int64).alias(name)).collect()

    joined = totals(orders, "revenue_minor").join(totals(returns, "returned_minor"), on="org", how="full",
                                                  coalesce=True)
    return (joined.with_columns(pl.col("revenue_minor").fill_null(0), pl.col("returned_minor").fill_null(0))
            .with_columns((pl.col("revenue_minor") - pl.col("returned_minor")).alias("net_minor"))
            .with_columns((pl.col("net_minor").cast(pl.Float64) * margin).alias("historical_clv"))
            .select("org", "revenue_minor", "returned_minor", "net_minor", "historical_clv")
            .sort("org"))
