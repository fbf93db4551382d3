"""Customer populations drawn from known BTYD parameters, to test that the fits recover them and
to benchmark them at scale.

Each simulator draws every customer's latent rates and returns the RFM summary the model sees
(x, t_x, T, and for spend the mean order value), vectorised: the number of purchases in a window
is Poisson, and the time of the last one is an order statistic of uniform arrival times, so no
per-purchase loop is needed. Times are in whatever unit the parameters are (alpha, beta scale
with it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from allegiance.analytics.clv._fit import FloatArray


class SimulatedRFM(NamedTuple):
    """frequency x, recency t_x, age T per customer (float arrays); with a holdout, also the
    purchases made in (T, T + holdout] and whether the customer was still alive at T."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    holdout_frequency: FloatArray | None = None
    alive: NDArray[np.bool_] | None = None


def _ages(n: int, T: ArrayLike) -> FloatArray:
    age = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).astype(np.float64)
    if np.any(age <= 0):
        raise ValueError("T must be positive")
    return age


def _last_of(count: FloatArray, of: FloatArray, window: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Time of the ``count``-th of ``of`` uniform arrivals in [0, window]: window * Beta(count, of - count + 1)."""
    out = np.zeros_like(window)
    has = count > 0
    out[has] = window[has] * rng.beta(count[has], of[has] - count[has] + 1.0)
    return out


def simulate_bgnbd(n: int, r: float, alpha: float, a: float, b: float, *, T: ArrayLike,
                   rng: np.random.Generator, holdout: float = 0.0) -> SimulatedRFM:
    """BG/NBD customers observed for ``T`` (scalar or one per customer) after their first purchase.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); purchases are Poisson(lambda) and after each
    repeat purchase the customer drops out with probability p, so it makes at most K ~ Geometric(p)
    repeat purchases. Of the N ~ Poisson(lambda (T + holdout)) arrivals, Binomial(N, T/(T+holdout))
    fall in [0, T]; x = min(that, K), t_x is the x-th of them, and the holdout count is
    min(N, K) - x. Alive at T means K > arrivals in [0, T]."""
    age = _ages(n, T)
    if holdout < 0:
        raise ValueError("holdout must be non-negative")
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    total = rng.poisson(lam * (age + holdout)).astype(np.float64)
    arrivals = rng.binomial(total.astype(np.int64), age / (age + holdout)).astype(np.float64) if holdout else total
    last_repeat = rng.geometric(np.clip(p, 1e-300, 1.0)).astype(np.float64)
    x = np.minimum(arrivals, last_repeat)
    rfm = SimulatedRFM(x, _last_of(x, arrivals, age, rng), age)
    if not holdout:
        return rfm
    return rfm._replace(holdout_frequency=np.minimum(total, last_repeat) - x, alive=last_repeat > arrivals)


def simulate_paretonbd(n: int, r: float, alpha: float, s: float, beta: float, *, T: ArrayLike,
                       rng: np.random.Generator, holdout: float = 0.0) -> SimulatedRFM:
    """Pareto/NBD customers: lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta), lifetime
    ~ Exponential(mu); purchases are Poisson(lambda) while alive. x counts those in [0, T], t_x is
    the last of them; with a holdout, also those in (T, T + holdout] and whether lifetime > T."""
    age = _ages(n, T)
    if holdout < 0:
        raise ValueError("holdout must be non-negative")
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0, n) / mu
    active = np.minimum(lifetime, age + holdout)
    total = rng.poisson(lam * active).astype(np.float64)
    active_cal = np.minimum(active, age)
    x = rng.binomial(total.astype(np.int64), active_cal / active).astype(np.float64) if holdout else total
    rfm = SimulatedRFM(x, _last_of(x, x, active_cal, rng), age)
    if not holdout:
        return rfm
    return rfm._replace(holdout_frequency=total - x, alive=lifetime > age)


def simulate_gammagamma(frequency: ArrayLike, p: float, q: float, gamma: float, *,
                        rng: np.random.Generator) -> FloatArray:
    """Mean order value of ``frequency`` (> 0) orders per customer: nu ~ Gamma(q, rate gamma),
    each order ~ Gamma(p, rate nu), so the mean of x orders ~ Gamma(p x, rate nu x)."""
    x = np.asarray(frequency, dtype=np.float64)
    if np.any(x <= 0):
        raise ValueError("frequency must be positive")
    nu = rng.gamma(q, 1.0 / gamma, x.size)
    return np.asarray(rng.gamma(p * x, 1.0 / (nu * x)), dtype=np.float64)


def on_day_grid(rfm: SimulatedRFM, days_per_unit: float = 1.0) -> SimulatedRFM:
    """The same customers with times rounded down to whole days, as :mod:`summary` reports them
    (``days_per_unit`` = 7 when the simulation ran in weeks); T is rounded to whole days too."""
    age = np.floor(rfm.T * days_per_unit) / days_per_unit
    recency = np.minimum(np.floor(rfm.recency * days_per_unit) / days_per_unit, age)
    return rfm._replace(recency=recency, T=age)
