"""Revenue retention (GRR, NRR and their components) and logo churn, per calendar period.

Revenue of an organization in a period is its order amounts minus the returns booked in that
period (a credit note lands when it is issued), clipped at 0: an organization whose returns
exceed its sales had no revenue that period. Only periods that are complete on `as_of` are
reported, so a half-finished month never shows up as a churn spike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Literal

import polars as pl

from ._common import (
    Period,
    add_months,
    as_of_end,
    attach,
    check_period,
    default_as_of,
    group_columns,
    in_window,
    last_complete_period,
    net_revenue,
    period_expr,
    period_grid,
    period_index,
    period_index_expr,
    ratio,
    utc_times,
)

ChurnMethod = Literal["activity", "left_on"]

RETENTION_COLUMNS = (
    "base_period", "next_period", "orgs", "retained_orgs", "churned_orgs", "starting_minor", "expansion_minor",
    "contraction_minor", "churned_minor", "ending_minor", "grr", "nrr", "net_negative_churn",
)


def _components(pairs: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Aggregate per-org (r0, r1) pairs of a base cohort (r0 > 0) into the retention components."""
    r0, r1 = pl.col("r0"), pl.col("r1")
    pairs = pairs.with_columns(
        pl.max_horizontal(r1 - r0, pl.lit(0)).alias("exp"),
        pl.when(r1 > 0).then(pl.max_horizontal(r0 - r1, pl.lit(0))).otherwise(0).alias("con"),
        pl.when(r1 > 0).then(0).otherwise(r0).alias("chu"),
    )
    aggs = [
        pl.len().cast(pl.Int64).alias("orgs"),
        (r1 > 0).sum().cast(pl.Int64).alias("retained_orgs"),
        (r1 <= 0).sum().cast(pl.Int64).alias("churned_orgs"),
        r0.sum().cast(pl.Int64).alias("starting_minor"),
        pl.col("exp").sum().cast(pl.Int64).alias("expansion_minor"),
        pl.col("con").sum().cast(pl.Int64).alias("contraction_minor"),
        pl.col("chu").sum().cast(pl.Int64).alias("churned_minor"),
        r1.sum().cast(pl.Int64).alias("ending_minor"),
    ]
    out = pairs.group_by(keys).agg(aggs) if keys else pairs.select(aggs)
    start, lost = pl.col("starting_minor"), pl.col("contraction_minor") + pl.col("churned_minor")
    return out.with_columns(
        ratio(start - lost, start).alias("grr"),
        ratio(start + pl.col("expansion_minor") - lost, start).alias("nrr"),
        (pl.col("expansion_minor") > lost).alias("net_negative_churn"),
    )


def revenue_retention(orders: pl.DataFrame, *, returns: pl.DataFrame | None = None, period: Period = "year",
                      as_of: dt.date | None = None, trailing_months: int | None = None,
                      organizations: pl.DataFrame | None = None,
                      by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Gross and net revenue retention of each base period's paying organizations.

    The cohort of a base period is every organization with revenue > 0 in it; new organizations
    of the next period are not in it (they are growth, not retention). Per organization with base
    revenue r0 and next-period revenue r1:

    - expansion = max(r1 - r0, 0); contraction = max(r0 - r1, 0) if r1 > 0; churned = r0 if r1 = 0
    - NRR = (start + expansion - contraction - churned) / start = sum(r1) / sum(r0)
    - GRR = (start - contraction - churned) / start = sum(min(r0, r1)) / sum(r0), so GRR <= 1
      by construction (the usual "capped at 100%") and GRR <= NRR
    - net_negative_churn = expansion > contraction + churned (equivalently NRR > 1)

    Calendar mode (default): one row per base period p whose next period is complete on `as_of`
    (default: the last day with an order or return). Trailing mode (`trailing_months=k`): one row
    comparing the k months ending on `as_of` with the k months before them (kept, with orgs = 0
    and null ratios, when nobody paid in the base window); base_period and next_period are then
    the first days of those two windows.

    Returns: base_period (Date), next_period (Date), *by, orgs, retained_orgs, churned_orgs
    (Int64), starting_minor, expansion_minor, contraction_minor, churned_minor, ending_minor
    (Int64), grr, nrr (Float64), net_negative_churn (Boolean). A cohort with no revenue has null
    ratios; `by` columns come from ``organizations`` (an organization's group is taken as of now).
    """
    keys = group_columns(by)
    orders = utc_times(orders)
    returns = utc_times(returns) if returns is not None else None
    as_of = as_of if as_of is not None else default_as_of(orders, returns)
    if as_of is None:
        return _empty_retention(keys, organizations)
    end = as_of_end(as_of)
    if trailing_months is not None:
        if trailing_months < 1:
            raise ValueError("trailing_months must be >= 1")
        cut = dt.datetime.combine(add_months(end.date(), -trailing_months), dt.time(), end.tzinfo)
        begin = dt.datetime.combine(add_months(end.date(), -2 * trailing_months), dt.time(), end.tzinfo)
        r0 = net_revenue(in_window(orders, begin, cut), in_window(returns, begin, cut) if returns is not None
                         else None, ["org"]).rename({"revenue_minor": "r0"})
        r1 = net_revenue(in_window(orders, cut, end), in_window(returns, cut, end) if returns is not None
                         else None, ["org"]).rename({"revenue_minor": "r1"})
        pairs = r0.filter(pl.col("r0") > 0).join(r1, on="org", how="left").with_columns(pl.col("r1").fill_null(0))
        pairs = attach(pairs, keys, organizations)
        out = _components(pairs, keys).with_columns(
            pl.lit(begin.date()).alias("base_period"), pl.lit(cut.date()).alias("next_period"))
        return out.select(_retention_order(keys))
    check_period(period)
    last_next = last_complete_period(as_of, period)
    rows = in_window(orders, None, end).with_columns(period_expr("occurred_at", period).alias("period"))
    back = None
    if returns is not None:
        back = in_window(returns, None, end).with_columns(period_expr("occurred_at", period).alias("period"))
    revenue = net_revenue(rows, back, ["org", "period"])
    base = revenue.filter(pl.col("revenue_minor") > 0).with_columns(
        pl.col("period").dt.offset_by(f"{check_period(period)}mo").alias("next_period"))
    base = base.filter(pl.col("next_period") <= last_next)
    pairs = base.join(revenue.rename({"period": "next_period", "revenue_minor": "r1"}),
                      on=["org", "next_period"], how="left")
    pairs = pairs.rename({"period": "base_period", "revenue_minor": "r0"}).with_columns(pl.col("r1").fill_null(0))
    pairs = attach(pairs, keys, organizations)
    out = _components(pairs, ["base_period", "next_period", *keys]) if pairs.height else \
        _empty_retention(keys, organizations)
    return out.select(_retention_order(keys)).sort(["base_period", *keys], nulls_last=True)


def _retention_order(keys: list[str]) -> list[str]:
    return [RETENTION_COLUMNS[0], RETENTION_COLUMNS[1], *keys, *RETENTION_COLUMNS[2:]]


def _empty_retention(keys: list[str], organizations: pl.DataFrame | None) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"base_period": pl.Date(), "next_period": pl.Date()}
    for key in keys:
        schema[key] = organizations.schema[key] if organizations is not None and key in organizations.columns \
            else pl.String()
    schema.update({c: pl.Int64() for c in RETENTION_COLUMNS[2:10]})
    schema.update({"grr": pl.Float64(), "nrr": pl.Float64(), "net_negative_churn": pl.Boolean()})
    return pl.DataFrame(schema=schema)


def net_negative_churn(retention: pl.DataFrame) -> pl.Series:
    """The net-negative-churn flag of each row of a `revenue_retention` frame: expansion from the
    cohort more than made up for everything it lost (expansion > contraction + churned).

    Recomputed from the components rather than read back, so it also works on frames a caller
    has re-aggregated (e.g. summed over segments). Returns a Boolean Series named
    ``net_negative_churn``, one value per row.
    """
    lost = retention["contraction_minor"] + retention["churned_minor"]
    return (retention["expansion_minor"] > lost).alias("net_negative_churn")


def churn_rate(orders: pl.DataFrame, organizations: pl.DataFrame | None = None, *, period: Period = "quarter",
               as_of: dt.date | None = None, method: ChurnMethod = "activity", lapse_periods: int = 1,
               kinds: Collection[str] | None = None, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """Logo churn per period: the share of the period's organizations that were lost.

    ``method="activity"`` (default; needs only orders): the organizations at risk in period p are
    those with at least one order in p; one is churned when it has no order in the next
    `lapse_periods` periods (1 = the next period, the textbook definition; 2+ forgives a quiet
    quarter of a seasonal buyer). Only periods p whose p + lapse_periods is complete on `as_of`
    are reported, since a churn cannot be seen before then.

    ``method="left_on"`` (recorded departures; needs organizations): at risk in p are the
    organizations on the books at some time in p (joined_on null or before p ends, left_on null
    or on/after p starts); churned are those whose left_on falls in p. Every complete period
    from the first one with an order is reported.

    `kinds` restricts to organizations of those kinds (e.g. ``{"customer"}``, so dealers that
    never buy do not dilute the rate); it and `by` need ``organizations``.

    Returns: period (Date), *by, at_risk (Int64), churned (Int64), retained (Int64),
    churn_rate (Float64, null when at_risk = 0).
    """
    if lapse_periods < 1:
        raise ValueError("lapse_periods must be >= 1")
    if method not in ("activity", "left_on"):
        raise ValueError(f"method must be 'activity' or 'left_on', not {method!r}")
    check_period(period)
    keys = group_columns(by)
    if (kinds is not None or keys or method == "left_on") and organizations is None:
        raise ValueError("organizations are needed for kinds, by and method='left_on'")
    orders = utc_times(orders)
    as_of = as_of if as_of is not None else default_as_of(orders)
    if as_of is None:
        return _empty_churn(keys, organizations)
    end = as_of_end(as_of)
    orders = in_window(orders, None, end)
    last = period_index(last_complete_period(as_of, period), period)
    if kinds is not None:
        assert organizations is not None
        organizations = organizations.filter(pl.col("kind").is_in(list(kinds)))
        orders = orders.join(organizations.select("org"), on="org", how="semi")
    if method == "activity":
        active = (orders.select("org", period_expr("occurred_at", period).alias("period")).unique()
                  .with_columns(period_index_expr("period", period).alias("i")).sort(["org", "i"]))
        active = active.with_columns(pl.col("i").shift(-1).over("org").alias("next_i"))
        active = active.filter(pl.col("i") + lapse_periods <= last).with_columns(
            (pl.col("next_i").is_null() | (pl.col("next_i") - pl.col("i") > lapse_periods)).alias("lost"))
        active = attach(active, keys, organizations)
    else:
        assert organizations is not None
        if orders.height == 0:
            return _empty_churn(keys, organizations)
        first = orders["occurred_at"].min()
        assert isinstance(first, dt.datetime)
        starts = [p for p in period_grid(first.date(), as_of, period) if period_index(p, period) <= last]
        grid = pl.DataFrame({"period": starts}, schema={"period": pl.Date()}).with_columns(
            pl.col("period").dt.offset_by(f"{check_period(period)}mo").alias("period_end"))
        orgs = organizations.select(["org", "joined_on", "left_on", *[k for k in keys if k != "org"]])
        active = grid.join(orgs, how="cross").filter(
            (pl.col("joined_on").is_null() | (pl.col("joined_on") < pl.col("period_end")))
            & (pl.col("left_on").is_null() | (pl.col("left_on") >= pl.col("period")))
        ).with_columns((pl.col("left_on").is_not_null() & (pl.col("left_on") < pl.col("period_end"))).alias("lost"))
    aggs = [
        pl.len().cast(pl.Int64).alias("at_risk"),
        pl.col("lost").sum().cast(pl.Int64).alias("churned"),
        (~pl.col("lost")).sum().cast(pl.Int64).alias("retained"),
    ]
    out = active.group_by(["period", *keys]).agg(aggs).sort(["period", *keys], nulls_last=True)
    return out.with_columns(ratio("churned", "at_risk").alias("churn_rate"))


def _empty_churn(keys: list[str], organizations: pl.DataFrame | None) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {"period": pl.Date()}
    for key in keys:
        schema[key] = organizations.schema[key] if organizations is not None and key in organizations.columns \
            else pl.String()
    schema.update({"at_risk": pl.Int64(), "churned": pl.Int64(), "retained": pl.Int64(),
                   "churn_rate": pl.Float64()})
    return pl.DataFrame(schema=schema)


__all__ = ["ChurnMethod", "churn_rate", "net_negative_churn", "revenue_retention"]
