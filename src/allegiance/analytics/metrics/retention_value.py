"""What a few points of customer retention are worth, in the operator's own numbers.

The pitch of a retention program is "keep 2% more customers a year"; this turns that into money
with a plain customer-lifetime-value projection, so the operator sees the value of the gain next
to the cost of the program (see `program_roi`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ._common import as_of_end, default_as_of, in_window, net_revenue
from .revenue import revenue_retention


@dataclass(frozen=True)
class RetentionGainValue:
    """The projection and every input it used; money in minor units.

    `sources` says, per input, whether it was "given" or computed from "frames".
    """

    retention_rate: float
    gain: float
    retention_after: float
    revenue_per_customer_minor: float
    customers: int
    margin: float
    discount_rate: float
    horizon_years: int
    value_per_customer_minor: float
    value_per_customer_after_minor: float
    uplift_per_customer_minor: float
    total_uplift_minor: float
    sources: dict[str, Literal["given", "frames"]]


def customer_value(retention: float, revenue_minor: float, margin: float, discount_rate: float,
                   horizon_years: int) -> float:
    """margin * revenue * sum_{t=1..H} r^t / (1 + d)^t: the discounted margin of the next H years
    of one current customer who stays each year with probability r and pays at each year end."""
    q = retention / (1.0 + discount_rate)
    return margin * revenue_minor * sum(q**t for t in range(1, horizon_years + 1))


def retention_gain_value(*, margin: float, retention_rate: float | None = None,
                         revenue_per_customer_minor: float | None = None, customers: int | None = None,
                         orders: pl.DataFrame | None = None, returns: pl.DataFrame | None = None,
                         as_of: dt.date | None = None, discount_rate: float = 0.10, horizon_years: int = 5,
                         gain: float = 0.02) -> RetentionGainValue:
    """Value of raising annual logo retention from r to r + `gain` (default 2 points).

    value(r) = margin * revenue * sum_{t=1..H} r^t / (1 + d)^t per customer (year-end cash flows,
    year t paid only by customers retained t times; year 0 is the same either way and left out);
    total uplift = customers * (value(r + gain) - value(r)). r + gain is capped at 1.

    Inputs not given are computed from `orders` (and `returns`) over the trailing 12 months
    ending on `as_of` (default: the last day with an order), with `revenue_retention`:

    - retention_rate = retained / paying organizations of the prior 12 months (logo retention:
      paid something in the prior year and again in the last year);
    - customers = organizations with revenue > 0 in the last 12 months;
    - revenue_per_customer_minor = their last-12-month net revenue / customers.

    An input that is neither given nor computable (no orders, nobody paid) is a ValueError.
    """
    if not 0 <= margin <= 1:
        raise ValueError("margin must be a share in [0, 1]")
    if horizon_years < 1:
        raise ValueError("horizon_years must be >= 1")
    if discount_rate <= -1:
        raise ValueError("discount_rate must be > -1")
    sources: dict[str, Literal["given", "frames"]] = {}
    needs_frames = retention_rate is None or revenue_per_customer_minor is None or customers is None
    if needs_frames:
        if orders is None:
            raise ValueError("give retention_rate, revenue_per_customer_minor and customers, or orders to compute them")
        as_of = as_of if as_of is not None else default_as_of(orders, returns)
        year = revenue_retention(orders, returns=returns, as_of=as_of, trailing_months=12)
        prior_orgs = int(year["orgs"][0]) if year.height else 0
        if retention_rate is None:
            if prior_orgs == 0:
                raise ValueError("no organization paid in the prior 12 months: retention cannot be computed")
            retention_rate = int(year["retained_orgs"][0]) / prior_orgs
            sources["retention_rate"] = "frames"
        if revenue_per_customer_minor is None or customers is None:
            cut = year["next_period"][0] if year.height else None
            paying = _last_year_revenue(orders, returns, cut, as_of)
            if paying.height == 0:
                raise ValueError("no organization paid in the last 12 months: revenue per customer cannot be computed")
            if customers is None:
                customers = paying.height
                sources["customers"] = "frames"
            if revenue_per_customer_minor is None:
                revenue_per_customer_minor = float(paying["revenue_minor"].sum()) / paying.height
                sources["revenue_per_customer_minor"] = "frames"
    assert retention_rate is not None and revenue_per_customer_minor is not None and customers is not None
    for name in ("retention_rate", "revenue_per_customer_minor", "customers"):
        sources.setdefault(name, "given")
    if not 0 <= retention_rate <= 1:
        raise ValueError("retention_rate must be a share in [0, 1]")
    after = min(1.0, max(0.0, retention_rate + gain))
    before_value = customer_value(retention_rate, revenue_per_customer_minor, margin, discount_rate, horizon_years)
    after_value = customer_value(after, revenue_per_customer_minor, margin, discount_rate, horizon_years)
    return RetentionGainValue(
        retention_rate=retention_rate, gain=gain, retention_after=after,
        revenue_per_customer_minor=revenue_per_customer_minor, customers=customers, margin=margin,
        discount_rate=discount_rate, horizon_years=horizon_years, value_per_customer_minor=before_value,
        value_per_customer_after_minor=after_value, uplift_per_customer_minor=after_value - before_value,
        total_uplift_minor=customers * (after_value - before_value), sources=sources)


def _last_year_revenue(orders: pl.DataFrame, returns: pl.DataFrame | None, cut: dt.date | None,
                       as_of: dt.date | None) -> pl.DataFrame:
    """Per-org net revenue (> 0 only) from `cut` to the end of `as_of`, the trailing year."""
    if cut is None or as_of is None:
        return pl.DataFrame(schema={"org": pl.String(), "revenue_minor": pl.Int64()})
    end = as_of_end(as_of)
    revenue = net_revenue(in_window(orders, cut, end), in_window(returns, cut, end) if returns is not None else None,
                          ["org"])
    return revenue.filter(pl.col("revenue_minor") > 0)


__all__ = ["RetentionGainValue", "customer_value", "retention_gain_value"]
