"""RFM, cohort retention and repeat rate in SQL that runs unchanged on DuckDB and Apache Spark.

The SQL lives in ``rfm.sql``, ``cohort_retention.sql`` and ``repeat_rate.sql`` next to this module
(shipped as package data); ``engines`` explains the dialect subset they keep to. The functions
here take the ``orders`` frame of :mod:`allegiance.analytics.frames` (only ``org``,
``occurred_at`` and ``amount_minor`` are read), run the SQL on the chosen engine (``"duckdb"``, the
default, ``"spark"`` with the ``allegiance[spark]`` extra and a Java runtime, or an
:class:`Engine` instance) and return a Polars frame with the declared schema below, in a
deterministic row order.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from allegiance.analytics.frames import SCHEMAS
from allegiance.analytics.sql.engines import (
    SPARK_EXTRA,
    DuckDBEngine,
    Engine,
    EngineUnavailable,
    SparkEngine,
    get_engine,
    java_home,
    load_sql,
    spark_unavailable_reason,
)

__all__ = [
    "COHORT_SCHEMA",
    "REPEAT_RATE_SCHEMA",
    "RFM_SCHEMA",
    "SEGMENTS",
    "SPARK_EXTRA",
    "DuckDBEngine",
    "Engine",
    "EngineUnavailable",
    "SparkEngine",
    "cohort_retention",
    "get_engine",
    "java_home",
    "load_sql",
    "repeat_rate",
    "rfm",
    "segment_of",
    "spark_unavailable_reason",
]

RFM_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "first_order_on": pl.Date(), "last_order_on": pl.Date(), "recency_days": pl.Int32(),
    "frequency": pl.Int64(), "monetary_minor": pl.Int64(), "r_score": pl.Int32(), "f_score": pl.Int32(),
    "m_score": pl.Int32(), "rfm_cell": pl.String(), "segment": pl.String(),
}
COHORT_SCHEMA: dict[str, pl.DataType] = {
    "cohort_month": pl.Date(), "month_offset": pl.Int32(), "period_month": pl.Date(), "cohort_size": pl.Int64(),
    "active_orgs": pl.Int64(), "retention_rate": pl.Float64(), "revenue_minor": pl.Int64(),
    "cohort_revenue_minor": pl.Int64(), "revenue_retention": pl.Float64(),
}
REPEAT_RATE_SCHEMA: dict[str, pl.DataType] = {
    "month": pl.Date(), "ordering_orgs": pl.Int64(), "repeat_orgs": pl.Int64(), "repeat_rate": pl.Float64(),
}

# The R x F grid behind `segment` (the same mapping as the CASE in rfm.sql; a test checks they agree).
SEGMENTS: dict[str, str] = {
    "champions": "R = 5 and F >= 4",
    "loyal": "R in 3..4 and F >= 4",
    "potential_loyalist": "R >= 4 and F in 2..3",
    "new": "R = 5 and F = 1",
    "promising": "R = 4 and F = 1",
    "needs_attention": "R = 3 and F = 3",
    "about_to_sleep": "R = 3 and F <= 2",
    "cannot_lose": "R <= 2 and F = 5",
    "at_risk": "R <= 2 and F in 3..4",
    "hibernating": "R <= 2 and F <= 2",
}

_ORDER_COLUMNS = ("org", "occurred_at", "amount_minor")


def segment_of(r_score: int, f_score: int) -> str:
    """The named segment of an R and F score (1..5 each), as documented in :data:`SEGMENTS`."""
    if not (1 <= r_score <= 5 and 1 <= f_score <= 5):
        raise ValueError(f"scores must be in 1..5, got R={r_score} F={f_score}")
    if r_score == 5 and f_score >= 4:
        return "champions"
    if r_score >= 3 and f_score >= 4:
        return "loyal"
    if r_score >= 4 and f_score >= 2:
        return "potential_loyalist"
    if r_score == 5:
        return "new"
    if r_score == 4:
        return "promising"
    if r_score == 3:
        return "needs_attention" if f_score == 3 else "about_to_sleep"
    if f_score == 5:
        return "cannot_lose"
    return "at_risk" if f_score >= 3 else "hibernating"


def _orders(orders: pl.DataFrame) -> pl.DataFrame:
    schema = SCHEMAS["orders"]
    missing = [c for c in _ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(f"orders frame lacks columns {missing}")
    return orders.select([pl.col(c).cast(schema[c], strict=True) for c in _ORDER_COLUMNS])


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    if list(frame.columns) != list(schema):
        raise RuntimeError(f"SQL returned columns {frame.columns}, expected {list(schema)}")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def rfm(orders: pl.DataFrame, as_of: date, engine: str | Engine = "duckdb") -> pl.DataFrame:
    """Recency, frequency and monetary value per organization as of the UTC day ``as_of``, scored 1..5.

    Orders on or before ``as_of`` count; organizations with none are absent. Returns
    :data:`RFM_SCHEMA` ordered by ``org``: ``recency_days`` = days from the last order to
    ``as_of``; ``frequency`` = order count; ``monetary_minor`` = sum of ``amount_minor``;
    ``r_score``/``f_score``/``m_score`` = quintiles by NTILE(5), 5 best, ties split by org id;
    ``rfm_cell`` = e.g. ``"545"``; ``segment`` = :data:`SEGMENTS` (R x F grid).
    """
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    result = get_engine(engine).query("rfm", {"orders": _orders(orders)}, {"as_of": as_of})
    return _conform(result, RFM_SCHEMA)


def cohort_retention(orders: pl.DataFrame, engine: str | Engine = "duckdb") -> pl.DataFrame:
    """Retention of monthly acquisition cohorts (cohort = UTC month of an org's first order).

    One row per cohort and month offset k (0 = the cohort month) up to the last month with any
    order, zero-activity months included. Returns :data:`COHORT_SCHEMA` ordered by
    (``cohort_month``, ``month_offset``): ``active_orgs`` of ``cohort_size`` ordered in month k,
    ``retention_rate`` = their share; ``revenue_minor`` = the cohort's order value that month,
    ``revenue_retention`` = that over the cohort's month-0 revenue (can exceed 1; null if month 0 is 0).
    """
    return _conform(get_engine(engine).query("cohort_retention", {"orders": _orders(orders)}), COHORT_SCHEMA)


def repeat_rate(orders: pl.DataFrame, engine: str | Engine = "duckdb") -> pl.DataFrame:
    """Share of ordering organizations that ordered at least twice, per UTC calendar month.

    Returns :data:`REPEAT_RATE_SCHEMA` ordered by ``month`` (first day of the month), months
    without orders absent.
    """
    return _conform(get_engine(engine).query("repeat_rate", {"orders": _orders(orders)}), REPEAT_RATE_SCHEMA)
