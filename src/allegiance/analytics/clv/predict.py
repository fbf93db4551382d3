"""One call from the ``orders`` frame to a per-organization lifetime-value forecast."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import polars as pl

from allegiance.analytics.clv import bgnbd, gammagamma, paretonbd
from allegiance.analytics.clv.summary import rfm_summary

Model = Literal["bgnbd", "paretonbd"]
PARAM_COLUMNS = ("param_r", "param_alpha", "param_a", "param_b", "param_s", "param_beta",
                 "param_p", "param_q", "param_gamma")


def predict_clv(orders: pl.DataFrame, *, as_of: dt.date | dt.datetime, horizon_days: float,
                model: Model = "bgnbd", margin: float = 1.0, discount_rate: float = 0.01) -> pl.DataFrame:
    """Fit a purchase model and the Gamma-Gamma spend model on the history up to ``as_of`` and
    forecast each organization's next ``horizon_days``.

    Why: ranks organizations by the value they are expected to bring (and flags valuable ones whose
    probability of still being active is falling) from nothing but their order history.

    Expects the ``orders`` frame (``org``, ``occurred_at``, ``amount_minor``); orders on UTC days
    after ``as_of`` are ignored; time unit days. ``model`` picks BG/NBD or Pareto/NBD;
    ``discount_rate`` is monthly; ``margin`` multiplies revenue into value.

    Returns one row per organization with an order on or before ``as_of``, sorted by org:
    ``org``, ``frequency``, ``recency``, ``T`` (days), ``monetary`` (mean repeat purchase-day value,
    minor units), ``p_alive``, ``expected_purchases`` (purchase days in the horizon),
    ``expected_aov`` (Gamma-Gamma conditional expected value per purchase day, minor units),
    ``clv`` (discounted margin over the horizon, minor units, float), ``model``, ``converged``
    (both fits) and the fitted parameters as constant columns ``param_r``, ``param_alpha``,
    ``param_a``, ``param_b`` (BG/NBD) or ``param_s``, ``param_beta`` (Pareto/NBD; the others
    null), ``param_p``, ``param_q``, ``param_gamma`` (Gamma-Gamma).

    Raises ValueError when fewer than 3 organizations have repeat purchases of positive value
    (the spend model cannot be fitted).
    """
    if horizon_days < 0:
        raise ValueError("horizon_days must be non-negative")
    summary = rfm_summary(orders, observation_end=as_of, time_unit="days")
    x = summary["frequency"].to_numpy().astype(np.float64)
    t_x = summary["recency"].to_numpy()
    age = summary["T"].to_numpy()
    monetary = summary["monetary"].to_numpy()
    repeat = (x > 0) & (monetary > 0)
    if int(repeat.sum()) < 3:
        raise ValueError("the spend model needs at least 3 organizations with repeat purchases of positive value")
    purchases: bgnbd.BGNBDFit | paretonbd.ParetoNBDFit
    params: dict[str, float | None] = dict.fromkeys(PARAM_COLUMNS)
    if model == "bgnbd":
        purchases = bgnbd.fit(x, t_x, age)
        params.update(zip(("param_r", "param_alpha", "param_a", "param_b"), purchases.params, strict=True))
    elif model == "paretonbd":
        purchases = paretonbd.fit(x, t_x, age)
        params.update(zip(("param_r", "param_alpha", "param_s", "param_beta"), purchases.params, strict=True))
    else:
        raise ValueError(f"model must be 'bgnbd' or 'paretonbd', not {model!r}")
    spend = gammagamma.fit(x[repeat], monetary[repeat])
    params.update(zip(("param_p", "param_q", "param_gamma"), spend.params, strict=True))
    clv = gammagamma.customer_lifetime_value(purchases, spend, x, t_x, age, monetary, horizon=horizon_days,
                                             time_unit="days", discount_rate=discount_rate, margin=margin)
    return summary.with_columns(
        pl.Series("p_alive", purchases.probability_alive(x, t_x, age)),
        pl.Series("expected_purchases", purchases.expected_purchases(horizon_days, x, t_x, age)),
        pl.Series("expected_aov", spend.expected_order_value(x, monetary)),
        pl.Series("clv", clv),
        pl.lit(model).alias("model"),
        pl.lit(purchases.converged and spend.converged).alias("converged"),
        *[pl.lit(value, dtype=pl.Float64).alias(name) for name, value in params.items()],
    )
