"""How often and how much buying organizations buy: repeat rate, purchase frequency, order value.

All three read the ``orders`` frame in a half-open window ``[start, end)`` and answer either for
the whole book (one row) or grouped by columns of ``organizations`` (segment, country, kind, ...)
with ``by=``. Counts are Int64, money is minor units (Int64 sums, Float64 averages), rates are
Float64 shares in [0, 1] and null (never NaN) when there is nothing to divide by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from ._common import Period, attach, group_columns, in_window, period_expr, period_grid, ratio, to_utc


def _overall_or_grouped(frame: pl.DataFrame, keys: list[str], aggs: list[pl.Expr]) -> pl.DataFrame:
    # select() on an empty frame still yields one row (sums 0, lens 0): the overall figure exists
    # even when nobody bought; group_by() on an empty frame yields no rows, as it should.
    if keys:
        return frame.group_by(keys).agg(aggs).sort(keys, nulls_last=True)
    return frame.select(aggs)


def repeat_customer_rate(orders: pl.DataFrame, start: dt.date | dt.datetime, end: dt.date | dt.datetime, *,
                         organizations: pl.DataFrame | None = None, by: str | Sequence[str] | None = None,
                         min_orders: int = 2) -> pl.DataFrame:
    """Share of buying organizations that bought at least `min_orders` times in ``[start, end)``.

    ``repeat_rate = orgs with >= min_orders orders in the window / orgs with >= 1 order in the
    window``. Every row of ``orders`` counts as one order whatever its amount (a fully returned
    order was still placed). Grouping columns named in `by` come from ``organizations``.

    Returns one row (ungrouped) or one row per group: *by, buyers (Int64), repeat_buyers (Int64),
    repeat_rate (Float64, null when buyers = 0).
    """
    if min_orders < 1:
        raise ValueError("min_orders must be >= 1")
    keys = group_columns(by)
    per_org = in_window(orders, start, end).group_by("org").agg(pl.len().alias("n"))
    per_org = attach(per_org, keys, organizations)
    out = _overall_or_grouped(per_org, keys, [
        pl.len().cast(pl.Int64).alias("buyers"),
        (pl.col("n") >= min_orders).sum().cast(pl.Int64).alias("repeat_buyers"),
    ])
    return out.with_columns(ratio("repeat_buyers", "buyers").alias("repeat_rate"))


def purchase_frequency(orders: pl.DataFrame, start: dt.date | dt.datetime, end: dt.date | dt.datetime, *,
                       period: Period | None = "month", organizations: pl.DataFrame | None = None,
                       by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Orders per buying organization per period: ``frequency = orders / buyers`` where buyers are
    the organizations with at least one order in that period (and group).

    Only orders in ``[start, end)`` count, so a calendar period cut by the window edge sees just
    its covered part. Every period overlapping the window appears, with orders = buyers = 0 and a
    null frequency when nobody bought (a gap is a fact, not a missing row); with `by`, every group
    seen in the window gets every period. ``period=None`` treats the whole window as one period.

    Returns: period (Date, first day; absent when ``period=None``), *by, orders (Int64),
    buyers (Int64), frequency (Float64 | null).
    """
    keys = group_columns(by)
    window = attach(in_window(orders, start, end), keys, organizations)
    aggs = [pl.len().cast(pl.Int64).alias("orders"), pl.col("org").n_unique().cast(pl.Int64).alias("buyers")]
    if period is None:
        out = _overall_or_grouped(window, keys, aggs)
        return out.with_columns(ratio("orders", "buyers").alias("frequency"))
    window = window.with_columns(period_expr("occurred_at", period).alias("period"))
    agg = window.group_by(["period", *keys]).agg(aggs)
    last_day = (to_utc(end) - dt.timedelta(microseconds=1)).date()
    starts = period_grid(to_utc(start).date(), last_day, period) if to_utc(start) < to_utc(end) else []
    grid = pl.DataFrame({"period": starts}, schema={"period": pl.Date()})
    if keys:
        grid = grid.join(window.select(keys).unique(), how="cross")
    out = grid.join(agg, on=["period", *keys], how="left", nulls_equal=True).with_columns(
        pl.col("orders").fill_null(0), pl.col("buyers").fill_null(0))
    return out.with_columns(ratio("orders", "buyers").alias("frequency")).sort(["period", *keys], nulls_last=True)


def average_order_value(orders: pl.DataFrame, start: dt.date | dt.datetime, end: dt.date | dt.datetime, *,
                        returns: pl.DataFrame | None = None, as_of: dt.date | None = None,
                        period: Period | None = None, organizations: pl.DataFrame | None = None,
                        by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Average value of the orders placed in ``[start, end)``, optionally net of returns.

    ``aov_minor = sum(net order value) / number of orders``. Without `returns` the net value is the
    order amount. With `returns`, each return is matched to its order by (org, order_id), whenever
    it happened (up to the end of day `as_of` when given), and an order's net value is
    ``max(amount - returned, 0)``: a return larger than its order (a data error or a refund of
    freight) takes the order to zero, never below. Returns of orders outside the window are
    ignored; they belong to those orders.

    Returns: period (Date; only when `period` is given), *by, orders (Int64), gross_minor (Int64),
    returned_minor (Int64, the part of returns actually deducted), net_minor (Int64),
    aov_minor (Float64, null when orders = 0).
    """
    keys = group_columns(by)
    window = in_window(orders, start, end)
    if returns is not None and returns.height > 0:
        back = in_window(returns, None, None if as_of is None else to_utc(as_of) + dt.timedelta(days=1))
        back = back.group_by(["org", "order_id"]).agg(pl.col("amount_minor").sum().alias("back"))
        window = window.join(back, on=["org", "order_id"], how="left")
        window = window.with_columns(
            pl.min_horizontal(pl.col("back").fill_null(0), pl.max_horizontal(pl.col("amount_minor"), pl.lit(0)))
            .alias("deducted"))
    else:
        window = window.with_columns(pl.lit(0, pl.Int64).alias("deducted"))
    window = attach(window, keys, organizations)
    group = keys
    if period is not None:
        window = window.with_columns(period_expr("occurred_at", period).alias("period"))
        group = ["period", *keys]
    out = _overall_or_grouped(window, group, [
        pl.len().cast(pl.Int64).alias("orders"),
        pl.col("amount_minor").sum().cast(pl.Int64).alias("gross_minor"),
        pl.col("deducted").sum().cast(pl.Int64).alias("returned_minor"),
    ])
    out = out.with_columns((pl.col("gross_minor") - pl.col("returned_minor")).alias("net_minor"))
    return out.with_columns(ratio("net_minor", "orders").alias("aov_minor"))


__all__ = ["average_order_value", "purchase_frequency", "repeat_customer_rate"]
