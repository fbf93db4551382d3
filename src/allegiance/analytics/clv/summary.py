"""Per-organization RFM summaries, the input of the buy-till-you-die (BTYD) models.

The BG/NBD, Pareto/NBD and Gamma-Gamma models do not read individual orders: each customer is
summarised by how many *repeat* purchase periods it had, when the last one was, how long it has
been observed and what its repeat purchases were worth. This module builds that summary from the
``orders`` frame (``org``, ``occurred_at`` UTC datetime, ``amount_minor`` int64) with the standard
BTYD conventions (the ones of Fader, Hardie & Lee and of the ``lifetimes`` package):

- purchases are grouped by UTC calendar day; several orders on one day are one purchase whose
  value is their sum;
- the first purchase day starts the customer's clock and is not a repeat purchase;
- ``frequency`` x = number of purchase days after the first one;
- ``recency`` t_x = time from the first to the last purchase day (0 for one-time buyers);
- ``T`` = time from the first purchase day to the observation end day;
- ``monetary`` = mean value (minor units) of the repeat purchase days (0 when x = 0).

Times are whole days converted to the chosen unit (``"days"``, or ``"weeks"`` = days / 7).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import polars as pl

TimeUnit = Literal["days", "weeks"]
DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0}

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "frequency": pl.Int64(), "recency": pl.Float64(), "T": pl.Float64(),
    "monetary": pl.Float64(),
}


def utc_day(value: dt.date | dt.datetime) -> dt.date:
    """The UTC calendar day of an observation boundary (naive datetimes are taken as UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    return value


def _unit(time_unit: str) -> float:
    try:
        return DAYS_PER_UNIT[time_unit]
    except KeyError:
        raise ValueError(f"time_unit must be one of {sorted(DAYS_PER_UNIT)}, not {time_unit!r}") from None


def purchase_days(orders: pl.DataFrame, *, until: dt.date | dt.datetime | None = None,
                  after: dt.date | dt.datetime | None = None) -> pl.DataFrame:
    """One row per (org, UTC day with at least one order): ``org``, ``day`` (date), ``value``
    (float, summed ``amount_minor`` of that day).

    Why: the BTYD models count purchase *occasions*, and several orders on one day are one
    occasion. ``until`` keeps days on or before that day, ``after`` days strictly after it
    (both by UTC calendar day).
    """
    days = orders.lazy().select(
        pl.col("org"),
        pl.col("occurred_at").dt.convert_time_zone("UTC").dt.date().alias("day"),
        pl.col("amount_minor").cast(pl.Float64).alias("value"),
    )
    if until is not None:
        days = days.filter(pl.col("day") <= utc_day(until))
    if after is not None:
        days = days.filter(pl.col("day") > utc_day(after))
    return (days.group_by("org", "day").agg(pl.col("value").sum())
            .sort("org", "day").collect())


def rfm_summary(orders: pl.DataFrame, *, observation_end: dt.date | dt.datetime,
                time_unit: TimeUnit = "days") -> pl.DataFrame:
    """The RFM summary the BG/NBD, Pareto/NBD and Gamma-Gamma models are fitted on.

    Expects the ``orders`` frame (at least ``org``, ``occurred_at``, ``amount_minor``); orders on
    days after ``observation_end`` are ignored. Returns one row per organization with a purchase
    on or before that day, sorted by org, with columns ``org`` (str), ``frequency`` (int64, repeat
    purchase days), ``recency`` (float, first to last purchase day), ``T`` (float, first purchase
    day to ``observation_end``), ``monetary`` (float, mean minor-unit value of the repeat purchase
    days, 0 for one-time buyers); times in ``time_unit``.
    """
    unit = _unit(time_unit)
    end = utc_day(observation_end)
    days = purchase_days(orders, until=end)
    if days.is_empty():
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    out = (
        days.group_by("org", maintain_order=True)
        .agg(
            (pl.len() - 1).cast(pl.Int64).alias("frequency"),
            pl.col("day").first().alias("first"),
            pl.col("day").last().alias("last"),
            (pl.col("value").sum() - pl.col("value").first()).alias("repeat_value"),
        )
        .with_columns(
            ((pl.col("last") - pl.col("first")).dt.total_days().cast(pl.Float64) / unit).alias("recency"),
            ((pl.lit(end) - pl.col("first")).dt.total_days().cast(pl.Float64) / unit).alias("T"),
            pl.when(pl.col("frequency") > 0)
            .then(pl.col("repeat_value") / pl.col("frequency"))
            .otherwise(0.0).alias("monetary"),
        )
    )
    return out.select(list(SUMMARY_SCHEMA)).sort("org")


def calibration_and_holdout(orders: pl.DataFrame, *, calibration_end: dt.date | dt.datetime,
                            observation_end: dt.date | dt.datetime,
                            time_unit: TimeUnit = "days") -> pl.DataFrame:
    """Split history at ``calibration_end`` to test a model's forecasts out of sample.

    Organizations whose first purchase is on or before ``calibration_end`` are kept (later ones
    are not part of the calibration cohort). Returns one row per such org, sorted by org:
    ``org``, ``frequency_cal``, ``recency_cal``, ``T_cal``, ``monetary_cal`` (the
    :func:`rfm_summary` at ``calibration_end``), ``frequency_holdout`` (int64, purchase days in
    (calibration_end, observation_end]), ``monetary_holdout`` (float, mean value of those days, 0
    if none) and ``duration_holdout`` (float, length of the holdout period in ``time_unit``).
    """
    unit = _unit(time_unit)
    cal_end, obs_end = utc_day(calibration_end), utc_day(observation_end)
    if obs_end <= cal_end:
        raise ValueError("observation_end must be after calibration_end")
    cal = rfm_summary(orders, observation_end=cal_end, time_unit=time_unit).rename(
        {"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal", "monetary": "monetary_cal"})
    holdout = (purchase_days(orders, until=obs_end, after=cal_end)
               .group_by("org").agg(pl.len().cast(pl.Int64).alias("frequency_holdout"),
                                    pl.col("value").mean().alias("monetary_holdout")))
    return (cal.join(holdout, on="org", how="left")
            .with_columns(pl.col("frequency_holdout").fill_null(0),
                          pl.col("monetary_holdout").fill_null(0.0),
                          pl.lit((obs_end - cal_end).days / unit, dtype=pl.Float64).alias("duration_holdout"))
            .sort("org"))
