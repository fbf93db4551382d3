"""Lifetime value on Apache Spark: the RFM summary per bucket of organizations, the BG/NBD or
Pareto/NBD and Gamma-Gamma fits on the driver from the summary compressed to distinct triples and
pairs with counts, predictions row by row per bucket (see :mod:`allegiance.analytics.distributed`
for the runner and why the results equal the embedded ones)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from allegiance.analytics.clv import bgnbd, gammagamma, paretonbd
from allegiance.analytics.clv.predict import PARAM_COLUMNS, Model, predict_clv
from allegiance.analytics.clv.summary import SUMMARY_SCHEMA, rfm_summary
from allegiance.analytics.distributed import (
    _arrow_out,
    _arrow_schema,
    _bucketed,
    _conform,
    _from_arrow,
    _quiet_pandas_check,
    spark_ddl,
    spark_engine,
)
from allegiance.analytics.frames import Frames
from allegiance.analytics.sql.engines import Engine

CLV_SCHEMA: dict[str, pl.DataType] = {
    **SUMMARY_SCHEMA, "p_alive": pl.Float64(), "expected_purchases": pl.Float64(), "expected_aov": pl.Float64(),
    "clv": pl.Float64(), "model": pl.String(), "converged": pl.Boolean(), **{c: pl.Float64() for c in PARAM_COLUMNS}}
TRIPLES_SCHEMA: dict[str, pl.DataType] = {
    "frequency": pl.Int64(), "recency": pl.Float64(), "T": pl.Float64(), "customers": pl.Int64()}
SPEND_SCHEMA: dict[str, pl.DataType] = {"frequency": pl.Int64(), "monetary": pl.Float64(), "customers": pl.Int64()}


@dataclass(frozen=True)
class ClvCounts:
    """The RFM summary compressed for the fits: distinct (frequency, recency, T) triples of every
    organization and distinct (frequency, monetary) pairs of repeat buyers with positive value,
    each with ``customers`` (how many organizations share it); sorted by all columns."""

    triples: pl.DataFrame
    spend: pl.DataFrame


@dataclass(frozen=True)
class ClvFit:
    """A purchase model and the Gamma-Gamma spend model, fitted on the driver from `ClvCounts`."""

    model: Model
    purchases: bgnbd.BGNBDFit | paretonbd.ParetoNBDFit
    spend: gammagamma.GammaGammaFit

    @property
    def converged(self) -> bool:
        return bool(self.purchases.converged and self.spend.converged)

    def params(self) -> dict[str, float | None]:
        """The ``param_*`` columns `predict_clv` reports (the other model's parameters None)."""
        out: dict[str, float | None] = dict.fromkeys(PARAM_COLUMNS)
        names = (("param_r", "param_alpha", "param_a", "param_b") if self.model == "bgnbd"
                 else ("param_r", "param_alpha", "param_s", "param_beta"))
        out.update(zip(names, (float(v) for v in self.purchases.params), strict=True))
        out.update(zip(("param_p", "param_q", "param_gamma"), (float(v) for v in self.spend.params), strict=True))
        return out


def _summary(frames: Frames, as_of: dt.date | dt.datetime) -> pl.DataFrame:
    return rfm_summary(frames.orders, observation_end=as_of, time_unit="days")


def clv_counts(summary: pl.DataFrame) -> ClvCounts:
    """`ClvCounts` of an `rfm_summary` frame (days), in Polars."""
    repeat = (pl.col("frequency") > 0) & (pl.col("monetary") > 0)
    triples = summary.group_by("frequency", "recency", "T").agg(customers=pl.len())
    spend = summary.filter(repeat).group_by("frequency", "monetary").agg(customers=pl.len())
    return ClvCounts(_conform(triples, TRIPLES_SCHEMA).sort(list(TRIPLES_SCHEMA)),
                     _conform(spend, SPEND_SCHEMA).sort(list(SPEND_SCHEMA)))


def _spark_counts(summary: Any) -> ClvCounts:
    from pyspark.sql import functions as F

    triples = summary.groupBy("frequency", "recency", "T").agg(F.count(F.lit(1)).alias("customers"))
    spend = (summary.where((F.col("frequency") > 0) & (F.col("monetary") > 0))
             .groupBy("frequency", "monetary").agg(F.count(F.lit(1)).alias("customers")))
    return ClvCounts(_from_arrow(triples.toArrow(), TRIPLES_SCHEMA).sort(list(TRIPLES_SCHEMA)),
                     _from_arrow(spend.toArrow(), SPEND_SCHEMA).sort(list(SPEND_SCHEMA)))


def clv_counts_on(engine: str | Engine, orders: pl.DataFrame, as_of: dt.date | dt.datetime, *,
                  buckets: int | None = None) -> ClvCounts:
    """The RFM summary at ``as_of`` (days) compressed to `ClvCounts`: on Spark the summary is
    computed per bucket by `rfm_summary` and aggregated by Spark, so only the distinct triples
    and pairs reach the driver."""
    spark = spark_engine(engine)
    frames = Frames(orders=orders)
    if spark is None or not orders.height:
        return clv_counts(_summary(frames, as_of))
    fn = partial(_summary, as_of=as_of)
    with _bucketed(spark, frames, fn, SUMMARY_SCHEMA, buckets=buckets, route_participants=False) as summary:
        return _spark_counts(summary)


def fit_clv(counts: ClvCounts, model: Model = "bgnbd") -> ClvFit:
    """Fit the purchase model on the weighted triples and Gamma-Gamma on the weighted pairs.

    The fits compress identical rows into weights themselves, so weighted distinct rows give the
    parameters of the per-organization fit in `predict_clv`. Raises ValueError (the messages of
    `predict_clv`) with fewer than 3 repeat buyers of positive value or an unknown model.
    """
    if int(counts.spend["customers"].sum()) < 3:
        raise ValueError("the spend model needs at least 3 organizations with repeat purchases of positive value")
    t = counts.triples
    x, t_x, age = (t[c].cast(pl.Float64).to_numpy() for c in ("frequency", "recency", "T"))
    weights = t["customers"].cast(pl.Float64).to_numpy()
    purchases: bgnbd.BGNBDFit | paretonbd.ParetoNBDFit
    if model == "bgnbd":
        purchases = bgnbd.fit(x, t_x, age, weights=weights)
    elif model == "paretonbd":
        purchases = paretonbd.fit(x, t_x, age, weights=weights)
    else:
        raise ValueError(f"model must be 'bgnbd' or 'paretonbd', not {model!r}")
    s = counts.spend
    spend = gammagamma.fit(s["frequency"].cast(pl.Float64).to_numpy(), s["monetary"].to_numpy(),
                           weights=s["customers"].cast(pl.Float64).to_numpy())
    return ClvFit(model, purchases, spend)


def fit_clv_on(engine: str | Engine, orders: pl.DataFrame, as_of: dt.date | dt.datetime, model: Model = "bgnbd",
               *, buckets: int | None = None) -> ClvFit:
    """`fit_clv` of `clv_counts_on`: aggregate on the engine, fit on the driver."""
    return fit_clv(clv_counts_on(engine, orders, as_of, buckets=buckets), model)


def clv_predictions(summary: pl.DataFrame, fit: ClvFit, *, horizon_days: float, margin: float = 1.0,
                    discount_rate: float = 0.01) -> pl.DataFrame:
    """The `predict_clv` columns (``CLV_SCHEMA``) of `rfm_summary` rows (days) under fitted
    models: row by row, so any subset of organizations gives its own rows of the whole."""
    x = summary["frequency"].to_numpy().astype(np.float64)
    t_x, age, monetary = (summary[c].to_numpy() for c in ("recency", "T", "monetary"))
    clv = gammagamma.customer_lifetime_value(fit.purchases, fit.spend, x, t_x, age, monetary, horizon=horizon_days,
                                             time_unit="days", discount_rate=discount_rate, margin=margin)
    return summary.with_columns(
        pl.Series("p_alive", fit.purchases.probability_alive(x, t_x, age), dtype=pl.Float64),
        pl.Series("expected_purchases", fit.purchases.expected_purchases(horizon_days, x, t_x, age),
                  dtype=pl.Float64),
        pl.Series("expected_aov", fit.spend.expected_order_value(x, monetary), dtype=pl.Float64),
        pl.Series("clv", clv, dtype=pl.Float64),
        pl.lit(fit.model).alias("model"),
        pl.lit(fit.converged).alias("converged"),
        *[pl.lit(value, dtype=pl.Float64).alias(name) for name, value in fit.params().items()],
    )


def predict_clv_on(engine: str | Engine, orders: pl.DataFrame, *, as_of: dt.date | dt.datetime,
                   horizon_days: float, model: Model = "bgnbd", margin: float = 1.0, discount_rate: float = 0.01,
                   buckets: int | None = None) -> pl.DataFrame:
    """`clv.predict_clv` on the chosen engine (same arguments, same frame, sorted by org).

    Embedded it is `predict_clv`. On Spark the RFM summary is computed per bucket and kept
    (persisted) in Spark, compressed there to `ClvCounts`, the models are fitted on the driver
    (`fit_clv`), and each summary row is predicted in the workers (`clv_predictions`) with the
    fitted models shipped along. Raises ValueError as `predict_clv` does.
    """
    spark = spark_engine(engine)
    if spark is None or not orders.height:
        return predict_clv(orders, as_of=as_of, horizon_days=horizon_days, model=model, margin=margin,
                           discount_rate=discount_rate)
    if horizon_days < 0:
        raise ValueError("horizon_days must be non-negative")
    from pyspark import StorageLevel

    frames = Frames(orders=orders)
    with _bucketed(spark, frames, partial(_summary, as_of=as_of), SUMMARY_SCHEMA, buckets=buckets,
                   route_participants=False) as summary:
        summary = summary.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            fit = fit_clv(_spark_counts(summary), model)
            large = str(spark.session.conf.get("spark.sql.execution.arrow.useLargeVarTypes")).lower() == "true"
            target = _arrow_schema(CLV_SCHEMA, large=large)

            def predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                for batch in batches:
                    if batch.num_rows:
                        rows = _from_arrow(pa.Table.from_batches([batch]), SUMMARY_SCHEMA)
                        out = clv_predictions(rows, fit, horizon_days=horizon_days, margin=margin,
                                              discount_rate=discount_rate)
                        yield from _arrow_out(out, CLV_SCHEMA, target).to_batches()

            with _quiet_pandas_check():
                table = summary.mapInArrow(predict, spark_ddl(CLV_SCHEMA)).toArrow()
        finally:
            summary.unpersist()
    return _from_arrow(table, CLV_SCHEMA).sort("org")
